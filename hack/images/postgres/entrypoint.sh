#!/bin/sh
# Starts PostgreSQL. On an empty data directory it first creates the cluster the way
# the official image does: superuser POSTGRES_USER with POSTGRES_PASSWORD, database
# POSTGRES_DB, trust on the local socket, scram-sha-256 for every TCP connection.
# The password reaches initdb through a file, never a command line.
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:=/var/lib/postgresql/data}"
socket_dir=/var/run/postgresql

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres-entrypoint: POSTGRES_PASSWORD must be set to initialise $PGDATA" >&2
        exit 1
    fi
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    pwfile=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl --pgdata="$PGDATA" --wait \
        --options="-c listen_addresses='' -c unix_socket_directories=$socket_dir" start
    if [ "$POSTGRES_DB" != "postgres" ]; then
        createdb --host="$socket_dir" --username="$POSTGRES_USER" "$POSTGRES_DB"
    fi
    pg_ctl --pgdata="$PGDATA" --wait --mode=fast stop
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$socket_dir"
