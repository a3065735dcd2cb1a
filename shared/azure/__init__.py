"""Azure SDK adapters: the app's credential, workspace resolution, tracking auth, jobs, events.

Each submodule imports its SDK (azure-identity, azure-ai-ml, azure-eventgrid, azureml-mlflow)
only when one of its functions runs, so importing this package costs nothing.
"""
