"""SQL migration files, `NNNN_name.sql`, applied in order by `chat_service.migrating`."""
