"""The task registry: every task the model can learn, by name.

Adding a task is a new module with a :class:`Task` subclass and one entry in :data:`TASKS`;
training, decoding, validation and ``speecheq score`` loop over this registry.
"""

from speecheq.tasks.aae import AAETask
from speecheq.tasks.base import (
    Batch,
    Phase,
    Target,
    Task,
    TaskContext,
    TaskOptions,
    TaskScores,
    masked_mean,
)
from speecheq.tasks.corpus import CorpusTask
from speecheq.tasks.dimensional import DimensionalTask
from speecheq.tasks.emotion import EmotionTask
from speecheq.tasks.gender import GenderTask
from speecheq.tasks.intensity import IntensityTask
from speecheq.tasks.naturalness import NaturalnessTask
from speecheq.tasks.phone import PhoneTask
from speecheq.tasks.speaker import SpeakerTask

TASKS: dict[str, type[Task]] = {
    task.name: task
    for task in (
        *(EmotionTask, IntensityTask, PhoneTask, GenderTask, NaturalnessTask, CorpusTask),
        *(SpeakerTask, DimensionalTask, AAETask),
    )
}
"""Task name -> task class, in the order tasks are reported."""

__all__ = [
    "TASKS",
    "Batch",
    "Phase",
    "Target",
    "Task",
    "TaskContext",
    "TaskOptions",
    "TaskScores",
    "masked_mean",
]
