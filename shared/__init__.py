"""mlgov: governance automation for MLflow experiment tracking (the domain core).

Nothing here imports ``azure.functions``; heavy imports (mlflow) happen lazily.
"""
