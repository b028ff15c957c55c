"""The steps the DAGs run, as plain functions of (settings, interval) returning small JSON-able summaries.

Both the Airflow tasks and `python -m leadscore` call these; none of them imports Airflow except through
`leadscore.airflow_adapter` for connections.
"""
