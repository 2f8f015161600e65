"""Methods: one recipe per method (named, content-addressed, resumable stages) over the shared core.

``train(config, out)`` runs the recipe of the config's item embedding (if it has one) and then the run;
``status(run)`` reports every stage. A new method is one recipe module registered in ``RECIPES`` plus
the modules its stages call; the trainer does not change.
"""

from lucidrec.methods.recipe import RECIPES, Recipe, RecipeContext, StageState, StageStatus

# Importing the recipes registers them.
from lucidrec.methods import ger, lane, llmemb  # noqa: E402,F401
from lucidrec.methods.run import prepare, recipe_for, status, train, train_or_reuse  # noqa: E402

__all__ = ["RECIPES", "Recipe", "RecipeContext", "StageState", "StageStatus", "prepare", "recipe_for", "status",
           "train", "train_or_reuse"]
