#!/usr/bin/env bash
# One-shot setup of LeadScore's Airflow stack (the airflow-init service); safe to re-run.
#  1. secrets shared by every Airflow component (Fernet key, JWT secret): generated once into the
#     airflow-secrets volume and read by the components through AIRFLOW__..._CMD, because each component
#     would otherwise invent its own JWT secret and reject the others' tokens;
#  2. the simple auth manager's password file for the admin login (from _AIRFLOW_WWW_USER_* in .env);
#  3. the metadata database schema (airflow db migrate).
set -euo pipefail

secrets_dir="${LEADSCORE_AIRFLOW_SECRETS_DIR:-/opt/airflow/secrets}"
umask 077
mkdir -p "${secrets_dir}"

if [[ ! -s "${secrets_dir}/fernet_key" ]]; then
    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode(), end='')" \
        > "${secrets_dir}/fernet_key"
    echo "generated ${secrets_dir}/fernet_key"
fi
if [[ ! -s "${secrets_dir}/jwt_secret" ]]; then
    python -c "import secrets; print(secrets.token_urlsafe(48), end='')" > "${secrets_dir}/jwt_secret"
    echo "generated ${secrets_dir}/jwt_secret"
fi

username="${_AIRFLOW_WWW_USER_USERNAME:?_AIRFLOW_WWW_USER_USERNAME is empty: set it in .env or remove the line}"
password="${_AIRFLOW_WWW_USER_PASSWORD:?_AIRFLOW_WWW_USER_PASSWORD is empty: set it in .env or remove the line}"
passwords_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE is not set}"
USERNAME="${username}" PASSWORD="${password}" OUT="${passwords_file}" python - <<'PY'
import json
import os
from pathlib import Path

Path(os.environ["OUT"]).write_text(json.dumps({os.environ["USERNAME"]: os.environ["PASSWORD"]}) + "\n")
PY
echo "Airflow UI login: ${username} (password from _AIRFLOW_WWW_USER_PASSWORD)"

airflow db migrate
airflow version
