"""Atomiton's `shell-command` and `image` through a real worker: every parameter, every output
key, and each documented difference (docs/atomiton.md), batched into two Blueprints."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from PIL import Image

from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from tests.conftest import ATOMITON_FLOWS
from tests.e2e.conftest import RunBlueprint
from workers.app import create_app
from workers.tasks import make_stores

SHELL_QUEUE = "atomiton-shell"
SHELL_KEYS = {"stdout", "stderr", "exitCode", "command", "duration", "success", "timedOut"}
IMAGE_KEYS = {"result", "imagePath", "width", "height", "format", "size", "success"}
RED, BLUE, GREEN, GRAY = (255, 0, 0), (0, 0, 255), (0, 255, 0), (128, 128, 128)


@pytest.fixture(scope="module")
def shell_worker(redis_server: RedisServer, worker_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """A worker that allows shell commands, on a queue of this module's own."""
    env = {**worker_env, "CONDUCTOR_ALLOW_SHELL": "1"}
    with WorkerProcess(redis_server.url, queues=[SHELL_QUEUE], env=env, name="ap-shell@%h") as w:
        yield w


@pytest.fixture(scope="module")
def run_blueprint_module(
    redis_server: RedisServer, data_dir: Path, worker: WorkerProcess
) -> Iterator[RunBlueprint]:
    """`run_blueprint` for module-scoped fixtures: each Blueprint here runs once per module."""
    settings = Settings.from_env(
        {"CONDUCTOR_REDIS_URL": redis_server.url, "CONDUCTOR_DATA_DIR": str(data_dir)}
    )
    stores = make_stores(settings)
    dispatcher = Dispatcher(create_app(settings), stores, default_registry())
    client = redis.Redis.from_url(redis_server.url)

    def run(text: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        plan = dispatcher.submit(load_blueprint_text(text), inputs or {})
        return wait_for_result(client, stores, plan.execution_id, 30)

    yield run
    client.close()


def fresh_folder(data_dir: Path, name: str) -> Path:
    """An empty folder `name` in the worker's files root."""
    folder = data_dir / "files" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# --- shell-command ------------------------------------------------------------------------------


SHELL_BLUEPRINT = """
id: atomiton-shell
name: Atomiton shell-command
nodes:
  - {id: basic, type: shell-command, queue: Q, parameters: {program: printf, args: ["%s|%s", "a b", c]}}
  - {id: json-args, type: shell-command, queue: Q, parameters: {program: echo, args: '["x", "y z"]'}}
  - id: fails
    type: shell-command
    queue: Q
    parameters: {program: sh, args: ["-c", "echo out; echo err >&2; exit 3"]}
  - {id: after, type: edit-fields, parameters: {keepOnlySet: true, values: {fails: "{{$inputs.default}}"}}}
  - {id: slow, type: shell-command, queue: Q, parameters: {program: sleep, args: ["5"], timeout: 400}}
  - {id: killed, type: shell-command, queue: Q, parameters: {program: sh, args: ["-c", "kill -KILL $$"]}}
  - id: quiet
    type: shell-command
    queue: Q
    parameters: {program: sh, args: ["-c", "echo hidden; echo hidden >&2"], captureOutput: false}
  - {id: fed, type: shell-command, queue: Q, parameters: {program: cat, stdin: typed}}
  - {id: dir-name, type: shell-command, queue: Q, parameters: {program: printf, args: [atomiton-process-shell/work]}}
  - {id: where, type: shell-command, queue: Q, parameters: {program: pwd}}
  - {id: rooted, type: shell-command, queue: Q, parameters: {program: pwd, workingDirectory: /atomiton-process-shell/work}}
  - id: env-source
    type: edit-fields
    parameters:
      keepOnlySet: true
      values: {GREETING: hello, LD_PRELOAD: /nowhere/lib.so, PATH: EVIL}
  - {id: env-use, type: shell-command, queue: Q, parameters: {program: env}}
  - {id: args-source, type: transform, parameters: {data: [p, "q r"], transformFunction: "item => item"}}
  - {id: args-use, type: shell-command, queue: Q, parameters: {program: echo, args: [from-parameters]}}
  - {id: program-source, type: shell-command, queue: Q, parameters: {program: printf, args: ["false"]}}
  - {id: program-use, type: shell-command, queue: Q, parameters: {program: echo, args: [kept]}}
  - {id: from-inputs, type: shell-command, queue: Q, parameters: {program: echo, args: [fixed]}}
edges:
  - {source: fails, target: after}
  - {source: dir-name, target: where, sourceHandle: stdout, targetHandle: workingDirectory}
  - {source: env-source, target: env-use, sourceHandle: result, targetHandle: environment}
  - {source: args-source, target: args-use, sourceHandle: result, targetHandle: args}
  - {source: program-source, target: program-use, sourceHandle: stdout, targetHandle: program}
  - {source: program-source, target: program-use, sourceHandle: stdout, targetHandle: command}
"""


@pytest.fixture(scope="module")
def shell_run(
    shell_worker: WorkerProcess, worker: WorkerProcess, run_blueprint_module: RunBlueprint,
    data_dir: Path,
) -> dict[str, Any]:  # fmt: skip
    """The shell Blueprint's result, run once for every test below."""
    folder = fresh_folder(data_dir, "atomiton-process-shell")
    (folder / "work").mkdir()
    evil = folder / "evil"
    evil.mkdir()
    for name in ("env", "echo"):  # would answer if a PATH from the input chose the program
        (evil / name).write_text("#!/bin/sh\necho hijacked\n")
        (evil / name).chmod(0o755)
    text = SHELL_BLUEPRINT.replace("queue: Q", f"queue: {SHELL_QUEUE}").replace("EVIL", str(evil))
    inputs = {"program": "false", "args": ["from-inputs"], "workingDirectory": "nowhere"}
    return run_blueprint_module(text, inputs)


def test_the_shell_blueprint_succeeds(shell_run: dict[str, Any]) -> None:
    assert shell_run["status"] == "succeeded", shell_run["error"]


def test_program_and_args_give_atomitons_output_keys(shell_run: dict[str, Any]) -> None:
    basic = shell_run["data"]["basic"]
    assert SHELL_KEYS | {"result"} <= set(basic)
    assert basic["stdout"] == basic["result"] == "a b|c"
    assert (basic["stderr"], basic["exitCode"], basic["success"]) == ("", 0, True)
    assert basic["timedOut"] is False
    assert basic["command"] == "printf '%s|%s' 'a b' c"  # shell-quoted, unlike Atomiton's join
    assert isinstance(basic["duration"], int) and 0 <= basic["duration"] < 5000


def test_args_as_json_text(shell_run: dict[str, Any]) -> None:
    assert shell_run["data"]["json-args"]["stdout"] == "x y z\n"


def test_a_non_zero_exit_is_returned_and_the_run_goes_on(shell_run: dict[str, Any]) -> None:
    fails = shell_run["data"]["after"]["result"]["fails"]  # the next node ran, and received it
    assert (fails["exitCode"], fails["success"], fails["timedOut"]) == (3, False, False)
    assert (fails["stdout"], fails["stderr"], fails["signal"]) == ("out\n", "err\n", None)


def test_a_timeout_is_returned_with_the_real_exit_status(shell_run: dict[str, Any]) -> None:
    slow = shell_run["data"]["slow"]
    assert (slow["timedOut"], slow["success"]) == (True, False)
    assert (slow["exitCode"], slow["signal"]) == (143, "SIGTERM")  # Atomiton reports 0
    assert 400 <= slow["duration"] < 3000


def test_a_program_killed_by_a_signal_does_not_report_success(shell_run: dict[str, Any]) -> None:
    killed = shell_run["data"]["killed"]
    assert (killed["exitCode"], killed["signal"], killed["success"]) == (137, "SIGKILL", False)
    assert killed["timedOut"] is False


def test_capture_output_false_and_stdin(shell_run: dict[str, Any]) -> None:
    quiet = shell_run["data"]["quiet"]
    assert (quiet["stdout"], quiet["stderr"], quiet["exitCode"]) == ("", "", 0)
    assert shell_run["data"]["fed"]["stdout"] == "typed"  # Atomiton never writes stdin


def test_working_directory_from_the_input(shell_run: dict[str, Any], data_dir: Path) -> None:
    work = (data_dir / "files" / "atomiton-process-shell" / "work").resolve()
    assert shell_run["data"]["where"]["stdout"] == f"{work}\n"
    assert shell_run["data"]["rooted"]["stdout"] == f"{work}\n"  # / is the files root


def test_environment_from_the_input_without_loader_variables(shell_run: dict[str, Any]) -> None:
    lines = shell_run["data"]["env-use"]["stdout"].splitlines()
    assert "GREETING=hello" in lines
    assert not any(line.startswith("LD_PRELOAD=") for line in lines)
    assert any(line.startswith("PATH=") and line.endswith("/evil") for line in lines)
    assert "hijacked" not in lines  # `env` was found on the worker's PATH


def test_args_from_the_input_override_the_parameter(shell_run: dict[str, Any]) -> None:
    assert shell_run["data"]["args-use"]["stdout"] == "p q r\n"


def test_program_from_the_input_is_ignored(shell_run: dict[str, Any]) -> None:
    # Its `program` and `command` ports receive "false": running that would print nothing.
    assert shell_run["data"]["program-use"]["stdout"] == "kept\n"


def test_execution_inputs_never_override(shell_run: dict[str, Any]) -> None:
    # Unwired nodes receive the execution's inputs: program, args and workingDirectory there
    # would run `false` in a missing folder.
    from_inputs = shell_run["data"]["from-inputs"]
    assert (from_inputs["stdout"], from_inputs["exitCode"]) == ("fixed\n", 0)


# --- image --------------------------------------------------------------------------------------


def make_images(folder: Path) -> None:
    """Small images whose pixels the assertions can predict."""
    base = Image.new("RGB", (80, 40), BLUE)
    base.paste(RED, (0, 0, 40, 40))  # left half red, right half blue
    base.save(folder / "base.png")
    Image.new("RGB", (20, 10), GREEN).save(folder / "mark.png")
    Image.new("RGBA", (40, 40), (*GREEN, 128)).save(folder / "glass.png")
    Image.new("RGB", (40, 40), GRAY).save(folder / "gray.png")
    rng = random.Random(7)
    noisy = Image.new("RGB", (64, 64))
    noisy.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(4096)]
    )
    noisy.save(folder / "noisy.png")


IMAGE_BLUEPRINT = """
id: atomiton-image
name: Atomiton image
nodes:
  - {id: base-ref, type: edit-fields, parameters: {keepOnlySet: true, values: {path: D/base.png}}}
  - {id: mark-ref, type: edit-fields, parameters: {keepOnlySet: true, values: {path: D/mark.png}}}
  - {id: overlay, type: image, parameters: {position: top-left, output: D/out/overlay.png}}
  - id: merge
    type: image
    parameters:
      operation: merge
      images: [null, "", {path: D/base.png}, D/mark.png]
      position: bottom-right
      blendMode: multiply
      output: /D/out/merge.png
  - id: composite
    type: image
    parameters: {operation: composite, images: [D/gray.png, D/glass.png], opacity: 0.5, output: D/out/composite.png}
  - id: blend
    type: image
    parameters: {operation: blend, images: [D/gray.png, D/mark.png], blendMode: difference, output: D/out/blend.png}
  - id: normal
    type: image
    parameters: {operation: blend, images: [D/gray.png, D/mark.png], blendMode: normal, output: D/out/normal.png}
  - {id: list-source, type: transform, parameters: {data: [D/gray.png, D/mark.png], transformFunction: "item => item"}}
  - id: wired-images
    type: image
    parameters: {operation: merge, images: [D/base.png, D/base.png], output: D/out/wired.png}
  - {id: cover, type: image, parameters: {operation: composite, images: [D/base.png], width: 40, height: 40, output: D/out/cover.png}}
  - {id: cover-left, type: image, parameters: {operation: composite, images: [D/base.png], width: 20, height: 40, position: left, output: D/out/cover-left.png}}
  - {id: cover-right, type: image, parameters: {operation: composite, images: [D/base.png], width: 20, height: 40, position: right, output: D/out/cover-right.png}}
  - {id: inside, type: image, parameters: {operation: composite, images: [D/base.png], width: 40, height: 40, fit: inside, output: D/out/inside.png}}
  - {id: contain, type: image, parameters: {operation: composite, images: [D/base.png], width: 40, height: 40, fit: contain, output: D/out/contain.png}}
  - {id: fill, type: image, parameters: {operation: composite, images: [D/base.png], width: 40, height: 10, fit: fill, output: D/out/fill.png}}
  - {id: outside, type: image, parameters: {operation: composite, images: [D/base.png], width: 40, height: 40, fit: outside, output: D/out/outside.png}}
  - {id: only-width, type: image, parameters: {operation: composite, images: [D/base.png], width: 40, output: D/out/only-width.png}}
  - {id: only-height, type: image, parameters: {operation: composite, images: [D/base.png], height: 20, output: D/out/only-height.png}}
  - {id: jpeg-low, type: image, parameters: {operation: composite, images: [D/noisy.png], format: jpeg, quality: 10, output: D/out/low.jpg}}
  - {id: jpeg-high, type: image, parameters: {operation: composite, images: [D/noisy.png], format: jpeg, quality: 95, output: D/out/high.jpg}}
  - {id: webp, type: image, parameters: {operation: composite, images: [D/noisy.png], format: webp, output: D/out/noisy.webp}}
  - {id: png-by-name, type: image, parameters: {operation: blend, images: [D/noisy.png], output: D/out/noisy.png}}
  - {id: default-output, type: image, parameters: {operation: composite, images: [D/gray.png], output: ""}}
  - {id: blurred, type: image, parameters: {operation: composite, images: [D/base.png], blur: 3, output: D/out/blurred.png}}
  - {id: sharpened, type: image, parameters: {operation: composite, images: [D/noisy.png], sharpen: true, output: D/out/sharpened.png}}
  - {id: gray, type: image, parameters: {operation: composite, images: [D/base.png], grayscale: true, output: D/out/gray.png}}
edges:
  - {source: base-ref, target: overlay, sourceHandle: result, targetHandle: baseImage}
  - {source: mark-ref, target: overlay, sourceHandle: result, targetHandle: overlayImage}
  - {source: list-source, target: wired-images, sourceHandle: result, targetHandle: images}
"""


@pytest.fixture(scope="module")
def image_run(
    worker: WorkerProcess, run_blueprint_module: RunBlueprint, data_dir: Path
) -> dict[str, Any]:
    """The image Blueprint's result, run once for every test below."""
    folder = fresh_folder(data_dir, "atomiton-process-image")
    make_images(folder)
    return run_blueprint_module(IMAGE_BLUEPRINT.replace("D/", "atomiton-process-image/"))


def written(data_dir: Path, output: dict[str, Any]) -> Image.Image:
    """The file an image node wrote, loaded."""
    with Image.open(data_dir / "files" / output["result"]) as image:
        image.load()
        return image


def near(pixel: Any, colour: tuple[int, ...], within: int = 2) -> bool:
    return all(abs(a - b) <= within for a, b in zip(pixel[: len(colour)], colour, strict=True))


IMAGE_NODES = [
    "overlay", "merge", "composite", "blend", "normal", "wired-images", "cover", "cover-left",
    "cover-right", "inside", "contain", "fill", "outside", "only-width", "only-height",
    "jpeg-low", "jpeg-high", "webp", "png-by-name", "default-output", "blurred", "sharpened",
    "gray",
]  # fmt: skip


def test_the_image_blueprint_succeeds_with_atomitons_output_keys(
    image_run: dict[str, Any], data_dir: Path
) -> None:
    assert image_run["status"] == "succeeded", image_run["error"]
    for node_id in IMAGE_NODES:
        output = image_run["data"][node_id]
        assert set(output) >= IMAGE_KEYS, node_id
        assert output["imagePath"] == output["result"] and output["success"] is True
        image = written(data_dir, output)
        assert (output["width"], output["height"]) == image.size, node_id
        assert output["format"] == (image.format or "").lower(), node_id
        assert output["size"] == (data_dir / "files" / output["result"]).stat().st_size


def test_overlay_from_the_base_image_and_overlay_image_inputs(
    image_run: dict[str, Any], data_dir: Path
) -> None:
    output = image_run["data"]["overlay"]  # operation: the default, overlay
    assert output["result"] == "atomiton-process-image/out/overlay.png"
    image = written(data_dir, output)
    assert image.size == (80, 40)
    assert near(image.getpixel((0, 0)), GREEN) and near(image.getpixel((19, 9)), GREEN)
    assert near(image.getpixel((20, 10)), RED) and near(image.getpixel((79, 39)), BLUE)


def test_merge_skips_empty_entries_and_reads_paths_of_mappings(
    image_run: dict[str, Any], data_dir: Path
) -> None:
    output = image_run["data"]["merge"]
    assert output["result"] == "atomiton-process-image/out/merge.png"  # from /...: root-based
    image = written(data_dir, output)
    assert near(image.getpixel((79, 39)), (0, 0, 0))  # blue multiplied by green
    assert near(image.getpixel((60, 29)), BLUE) and near(image.getpixel((0, 0)), RED)


def test_composite_and_blend_really_composite(image_run: dict[str, Any], data_dir: Path) -> None:
    # Atomiton's composite and blend are stubs that only re-encode the first image.
    composite = written(data_dir, image_run["data"]["composite"]).getpixel((20, 20))
    weight = 128 / 255 * 0.5  # the layer's alpha, halved by opacity
    expected = tuple(round(weight * g + (1 - weight) * 128) for g in GREEN)
    assert near(composite, expected)
    blend = written(data_dir, image_run["data"]["blend"])
    assert near(blend.getpixel((20, 20)), (128, 127, 128))  # |green - gray|
    assert near(blend.getpixel((2, 2)), GRAY)
    normal = written(data_dir, image_run["data"]["normal"])  # Atomiton's editor default
    assert near(normal.getpixel((20, 20)), GREEN)


def test_images_from_the_input_override_the_parameter(
    image_run: dict[str, Any], data_dir: Path
) -> None:
    image = written(data_dir, image_run["data"]["wired-images"])
    assert image.size == (40, 40)
    assert near(image.getpixel((20, 20)), GREEN) and near(image.getpixel((2, 2)), GRAY)


@pytest.mark.parametrize(
    ("node_id", "size"),
    [
        ("cover", (40, 40)),
        ("inside", (40, 20)),  # Atomiton reports the requested 40x40
        ("contain", (40, 40)),
        ("fill", (40, 10)),
        ("outside", (80, 40)),
        ("only-width", (40, 20)),
        ("only-height", (40, 20)),
    ],
)
def test_width_height_and_fit(
    image_run: dict[str, Any], data_dir: Path, node_id: str, size: tuple[int, int]
) -> None:
    output = image_run["data"][node_id]
    assert (output["width"], output["height"]) == size
    assert written(data_dir, output).size == size


def test_cover_crops_around_position(image_run: dict[str, Any], data_dir: Path) -> None:
    cover = written(data_dir, image_run["data"]["cover"])
    assert near(cover.getpixel((5, 20)), RED) and near(cover.getpixel((35, 20)), BLUE)
    left = written(data_dir, image_run["data"]["cover-left"])
    right = written(data_dir, image_run["data"]["cover-right"])
    assert near(left.getpixel((19, 39)), RED) and near(right.getpixel((0, 0)), BLUE)


def test_contain_pads_with_transparency(image_run: dict[str, Any], data_dir: Path) -> None:
    contain = written(data_dir, image_run["data"]["contain"])  # Sharp pads with opaque black
    assert contain.getpixel((20, 2)) == (0, 0, 0, 0)
    assert near(contain.getpixel((5, 20)), (*RED, 255))


def test_format_and_quality(image_run: dict[str, Any], data_dir: Path) -> None:
    low, high = image_run["data"]["jpeg-low"], image_run["data"]["jpeg-high"]
    assert (low["format"], high["format"]) == ("jpeg", "jpeg")
    assert low["size"] < high["size"]
    assert image_run["data"]["webp"]["format"] == "webp"
    by_name = written(data_dir, image_run["data"]["png-by-name"])
    assert (by_name.format, by_name.mode) == ("PNG", "RGB")  # full colour, not a palette


def test_an_empty_output_writes_next_to_the_input(image_run: dict[str, Any]) -> None:
    output = image_run["data"]["default-output"]
    assert output["result"] == "atomiton-process-image/gray-composite.png"


def test_blur_sharpen_and_grayscale(image_run: dict[str, Any], data_dir: Path) -> None:
    blurred = written(data_dir, image_run["data"]["blurred"])
    edge = blurred.getpixel((39, 20))
    assert isinstance(edge, tuple) and 0 < edge[0] < 255 and 0 < edge[2] < 255
    with Image.open(data_dir / "files" / "atomiton-process-image" / "noisy.png") as noisy:
        sharpened = written(data_dir, image_run["data"]["sharpened"])
        assert sharpened.getpixel((30, 30)) != noisy.getpixel((30, 30))
    gray = written(data_dir, image_run["data"]["gray"])
    assert gray.mode == "L" and gray.getpixel((5, 5)) == 76  # red's luma


# --- Atomiton's image-processor flow: its image nodes, parameters unchanged ---------------------


def test_the_image_processor_flows_image_nodes(
    worker: WorkerProcess, run_blueprint_module: RunBlueprint, data_dir: Path
) -> None:
    flow = yaml.safe_load((ATOMITON_FLOWS / "image-processor.flow.yaml").read_text())
    nodes = {node["id"]: node for node in flow["nodes"]}
    files = data_dir / "files"
    (files / "images" / "input").mkdir(parents=True, exist_ok=True)
    (files / "assets").mkdir(exist_ok=True)
    Image.new("RGB", (400, 200), RED).save(files / "images" / "input" / "ap-photo.png")
    Image.new("RGB", (40, 20), BLUE).save(files / "assets" / "watermark.png")
    blueprint = {
        "id": "image-processor-nodes",
        "name": "image-processor's image nodes",
        "nodes": [
            {
                "id": "photo",
                "type": "edit-fields",
                "parameters": {
                    "keepOnlySet": True,
                    "values": {"path": "/images/input/ap-photo.png"},
                },
            },
            {
                "id": "image-resize",
                "type": "image",
                "parameters": nodes["image-resize"]["parameters"],
            },
            {
                "id": "image-watermark",
                "type": "image",
                "parameters": nodes["image-watermark"]["parameters"],
            },
        ],
        "edges": [
            {"source": "photo", "target": "image-resize"},
            {"source": "image-resize", "target": "image-watermark"},
        ],
    }
    result = run_blueprint_module(yaml.safe_dump(blueprint))
    assert result["status"] == "succeeded", result["error"]
    with Image.open(files / "images" / "input" / "ap-photo-resize.jpg") as resized:
        assert (resized.format, resized.size) == ("JPEG", (800, 400))  # inside 800x600
    marked = result["data"]["image-watermark"]
    assert marked["result"] == "images/input/ap-photo-resize-watermark.jpg"
    image = written(data_dir, marked)
    # scale 0.25: 200x100 at 10 px from the bottom-right corner, opacity 0.7 of blue on red
    inside = image.getpixel((800 - 10 - 100, 400 - 10 - 50))
    assert near(inside, (round(0.3 * 255), 0, round(0.7 * 255)), within=8)
    assert near(image.getpixel((800 - 5, 400 - 5)), RED, within=24)
    assert near(image.getpixel((800 - 215, 400 - 50)), RED, within=24)
