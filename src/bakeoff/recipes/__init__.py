"""Trial recipes: how one candidate is loaded, adapted, trained, measured and evaluated (learning rates,
dtype, scoring policy, merging before inference). Runners (`bakeoff.runners`) only schedule recipes and
store what they return, as torchtune separates recipes from the components they compose."""
