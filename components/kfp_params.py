"""A step's frozen config dataclass built from its KFP component's parameters, with one table of renames.

A component body captures its parameters with `params = dict(locals())` as its first statement (a
copy, before its imports add names to the frame), then calls `step_config(Config, params, ...)`. KFP
parameters cannot be None, so an empty string becomes None where the field's default is None;
artifacts are skipped (their paths are passed explicitly); and a parameter that lands nowhere is an
error, so a typo can never silently keep a field's default.
"""

import dataclasses

from kfp import dsl

# Pipeline parameter name -> config field name, the same for every step.
RENAMES = {
    "mlflow_tracking_uri": "tracking_uri",
    "mlflow_experiment": "experiment",
    "run_id": "kfp_run_id",
}


def is_artifact(value) -> bool:
    """Whether `value` is a KFP artifact, or a non-empty list of them (an `Input[list[...]]`)."""
    if isinstance(value, list | tuple) and value:
        return all(isinstance(item, dsl.Artifact) for item in value)
    return isinstance(value, dsl.Artifact)


def field_values(
    config_class: type,
    params: dict,
    /,
    *,
    rename: dict | None = None,
    others: tuple = (),
    **values,
) -> dict:
    """The keyword arguments of `config_class` for the component parameters `params` and `values`.

    Args:
        config_class: the step's config dataclass.
        params: the component's parameters by name (its `locals()` before anything else).
        rename: parameter -> field, over `RENAMES`.
        others: parameters the body uses otherwise; they go to no field.
        values: fields set explicitly (artifact paths, converted values); they win over `params`.

    Raises:
        TypeError: `config_class` is no dataclass; a parameter maps to no field and is not in
            `others`; two parameters map to one field; `rename`, `others` or `values` name a
            parameter or a field that does not exist.
    """
    if not dataclasses.is_dataclass(config_class):
        raise TypeError(f"{config_class!r} is not a dataclass")
    name = config_class.__name__
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    rename = rename or {}
    _check_names(name, "rename", set(rename), set(params), "parameter")
    _check_names(name, "others", set(others), set(params), "parameter")
    _check_names(name, "values", set(values), set(fields), "field")
    kwargs, sources = {}, {}
    for param, value in params.items():
        target = rename.get(param, RENAMES.get(param, param))
        if param in others or is_artifact(value) or target in values:
            continue
        if target not in fields:
            raise TypeError(f"{name}: parameter {param!r} maps to no field (rename it or list it in others)")
        if target in sources:
            raise TypeError(f"{name}: parameters {sources[target]!r} and {param!r} both map to {target!r}")
        sources[target] = param
        kwargs[target] = None if value == "" and fields[target].default is None else value
    return {**kwargs, **values}


def step_config(
    config_class: type, params: dict, /, *, rename: dict | None = None, others: tuple = (), **values
):
    """`config_class` built from a component's parameters; see `field_values` for the rules and errors."""
    return config_class(**field_values(config_class, params, rename=rename, others=others, **values))


def _check_names(config: str, what: str, names: set, known: set, kind: str) -> None:
    unknown = sorted(names - known)
    if unknown:
        raise TypeError(f"{config}: {what} names {', '.join(map(repr, unknown))}, not a {kind}")
