"""The prediction engine in parts: options, backpressure, the OOM policy, the adapter contract, the writer, the report, the tasks (predict, embed), and the pipeline that runs them."""

from .engine import ItemSource, PredictionRun, run_predictions
from .options import PredictionOptions
from .report import ItemFailure, PredictionReport
from .tasks import EMBED, PREDICT, Task

__all__ = ["EMBED", "PREDICT", "Task", "ItemFailure", "ItemSource", "PredictionOptions", "PredictionReport", "PredictionRun", "run_predictions"]
