"""Daily Spotify new-releases pull into S3 with Airflow's KubernetesPodOperator.

The task fails when the container exits non-zero; spotify-batch leaves nothing at the key in
that case, so Airflow's retries are safe. Exit statuses are listed in the README.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

with DAG(
    dag_id="spotify_new_releases",
    schedule="15 6 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
) as dag:
    KubernetesPodOperator(
        task_id="pull_new_releases",
        name="spotify-batch",
        image="registry.example.com/spotify-batch:0.1.0",
        arguments=[
            "new-releases",
            "--market", "SE,US,DE",
            "--out", "s3://my-bucket/spotify/dt={{ ds }}/market={market}/albums.csv",
            # Only albums not written before; the state is published with the data, so a
            # retried task starts from where the last successful one left off.
            "--state", "s3://my-bucket/spotify/state/new_releases.tsv",
            "--new-only",
            "--log-format", "json",
        ],
        env_vars=[k8s.V1EnvVar(name="AWS_REGION", value="eu-west-1")],
        secrets=[],  # mount SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET from a Kubernetes Secret here
        service_account_name="spotify-batch",
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "250m", "memory": "256Mi"}, limits={"memory": "512Mi"}
        ),
        get_logs=True,
        termination_grace_period=30,
    )
