-- MLflow's and Prefect's databases on one PostgreSQL, as `dlfolio stack up` makes them (flows/stack.py).
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
