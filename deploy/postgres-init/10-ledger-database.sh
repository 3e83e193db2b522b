#!/bin/sh
# Run once by the postgres image on an empty data directory: the ledger gets a database of its own next to
# Dagster's (POSTGRES_DB), owned by the same user.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"${MIRAKL_LEDGER_DB}\" OWNER \"${POSTGRES_USER}\""
