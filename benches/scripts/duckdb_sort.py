#!/usr/bin/env python3
"""DuckDB contender of `sluice bench sort`: the platform's legacy stream-sort query, verbatim.

What it is: one process that opens an in-memory DuckDB with default settings (optionally
`SET memory_limit`, `SET temp_directory`, `SET threads`), runs

    COPY (SELECT * EXCLUDE (filename, file_row_number)
          FROM read_parquet([...files...], filename=true, file_row_number=true)
          ORDER BY CAST(ts_utc AS TIMESTAMP), filename, file_row_number)
    TO 'out.parquet' (FORMAT parquet, COMPRESSION zstd)

and prints one JSON line: rows written, the query's own seconds, the output's size and the
process's peak RSS (`ru_maxrss`, KiB on Linux, reported in bytes).

What it is not: a timer of record. The harness measures wall time around the whole process
(interpreter start and `import duckdb` included, as for every contender).

With `--sort-key COL` (for `sluice bench sort --input` on other datasets) the query orders
by `CAST(COL AS TIMESTAMP)` instead; the default is the legacy query, verbatim.

Usage: duckdb_sort.py --files-from LIST --out OUT.parquet [--memory-limit 1GiB]
                      [--temp-dir DIR] [--threads N] [--sort-key ts_utc]
"""

import argparse
import json
import os
import re
import resource
import sys
import time


def sql_string(text):
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name):
    """A SQL identifier: bare when it is one, else double-quoted."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def legacy_query(files, out, key="ts_utc"):
    file_list = "[" + ", ".join(sql_string(f) for f in files) + "]"
    return (
        "COPY (SELECT * EXCLUDE (filename, file_row_number) "
        f"FROM read_parquet({file_list}, filename=true, file_row_number=true) "
        f"ORDER BY CAST({sql_ident(key)} AS TIMESTAMP), filename, file_row_number) "
        f"TO {sql_string(out)} (FORMAT parquet, COMPRESSION zstd)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files-from", required=True, help="file with one parquet path a line")
    parser.add_argument("--out", required=True)
    parser.add_argument("--memory-limit")
    parser.add_argument("--temp-dir")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--sort-key", default="ts_utc")
    args = parser.parse_args()

    import duckdb

    with open(args.files_from, encoding="utf-8") as f:
        files = [line for line in f.read().splitlines() if line]

    con = duckdb.connect()
    settings = []
    if args.memory_limit:
        settings.append(f"SET memory_limit={sql_string(args.memory_limit)}")
    if args.temp_dir:
        settings.append(f"SET temp_directory={sql_string(args.temp_dir)}")
    if args.threads:
        settings.append(f"SET threads={int(args.threads)}")
    for statement in settings:
        con.execute(statement)

    started = time.perf_counter()
    copied = con.execute(legacy_query(files, args.out, args.sort_key)).fetchone()
    query_s = time.perf_counter() - started

    # Verified from the written file, not trusted from COPY's return value.
    rows = con.execute(
        f"SELECT count(*) FROM read_parquet({sql_string(args.out)})"
    ).fetchone()[0]
    con.close()

    print(
        json.dumps(
            {
                "engine": "duckdb",
                "version": duckdb.__version__,
                "settings": settings,
                "query": legacy_query(["..."], args.out, args.sort_key).replace(
                    "['...']", "[...files...]"
                ),
                "files": len(files),
                "rows": rows,
                "rows_reported_by_copy": copied[0] if copied else None,
                "bytes": os.path.getsize(args.out),
                "query_s": query_s,
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
