"""The table of steps is complete and true: every step has its components, images, commands and configs."""

import ast
import dataclasses
import importlib

import click
import pytest

from cityseg.cli import COMMANDS
from cityseg.components import container_images, registry
from cityseg.components.registry import STEPS, TASKS, Step

STEP_NAMES = [step.name for step in STEPS]


def _by_name(name: str) -> Step:
    return next(step for step in STEPS if step.name == name)


@pytest.mark.parametrize("name", STEP_NAMES)
def test_every_step_has_a_component_image_command_and_config(name):
    step = _by_name(name)
    assert step.tasks and step.commands and step.configs, name
    components = importlib.import_module(step.component_module)
    for task in step.tasks:
        component = getattr(components, task.name)
        assert component.python_func.__name__ == task.name
        image = component.component_spec.implementation.container.image
        assert image == container_images.image(task.image), task.name
        assert task.image in container_images.BY_NAME, task.name
    cli = importlib.import_module(step.cli_module)
    for command in step.commands:
        assert isinstance(getattr(cli, command), click.Command), command
        assert COMMANDS[command] == f"{step.cli_module}:{command}"
    configs = importlib.import_module(step.config_module)
    for config in step.configs:
        assert dataclasses.is_dataclass(getattr(configs, config)), config
        assert getattr(configs, config).__dataclass_params__.frozen, config


def _component_functions(path) -> set[str]:
    """The functions of a component.py decorated with `@container_images.component`."""
    tree = ast.parse(path.read_text(), str(path))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d) == "container_images.component" for d in node.decorator_list)
    }


def test_every_component_of_a_step_folder_is_a_task_of_the_table():
    folder = container_images.IMAGES_DIR.parent / "components"
    found = {name for path in folder.glob("*/component.py") for name in _component_functions(path)}
    assert found == set(TASKS)
    assert {path.parent.name for path in folder.glob("*/component.py")} == {
        step.name for step in STEPS if step.tasks
    }


def test_task_names_and_commands_are_unique():
    names = [task.name for step in STEPS for task in step.tasks]
    assert len(names) == len(set(names))
    commands = [command for step in STEPS for command in step.commands]
    assert len(commands) == len(set(commands))


def test_an_unknown_task_is_named_with_the_known_ones():
    with pytest.raises(KeyError, match="no pipeline task 'nope'; known: synth, "):
        registry.task("nope")
    assert registry.task("deploy").image == "push"
