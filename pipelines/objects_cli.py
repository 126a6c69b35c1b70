"""Which of `cityseg run`'s flags reach the object pipeline: those given on the command line that it has."""

import click


def command_line_params(params: dict, inputs: dict) -> dict:
    """The `run` options given on the command line (not left at their training defaults).

    Raises:
        click.UsageError: naming the given flags that the object pipeline has no parameter for.
    """
    context = click.get_current_context()
    given = {
        name: value
        for name, value in params.items()
        if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    }
    foreign = sorted(set(given) - set(inputs))
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise click.UsageError(f"{flags}: not a parameter of the objects pipeline")
    return given
