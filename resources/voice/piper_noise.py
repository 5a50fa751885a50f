"""Seeded noise for piper's VITS graph with ONE inference session per voice per process.

Piper draws its noise inside the model (RandomNormalLike nodes). A seed attribute on those nodes makes a line
reproducible, but only by building a new onnxruntime session per line (serialise the graph, re-plan it:
seconds per call). Instead each RandomNormalLike(x) is replaced once by a counter-based generator fed by a
graph input, `studio_noise_seed` (int64[1]): element i of the noise is a pure function of (seed, node, i) —
a Lehmer step and a quadratic-residue mix in int64, two uniforms, Box–Muller — so the same line with the same
seed gives the same samples in any process, and every line reuses the loaded session.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NOISE_SEED_INPUT = "studio_noise_seed"
NOISE_VERSION = 1  # part of the voice model id: bump when the generator changes
_M = 2147483647  # 2^31 - 1


def _const(g: Any, name: str, value: Any, dtype: int) -> str:
    """A graph initializer (a scalar as a 1-element tensor); returns its name."""
    from onnx import helper

    g.initializer.append(helper.make_tensor(name, dtype, [1] if not isinstance(value, list) else [len(value)],
                                            value if isinstance(value, list) else [value]))
    return name


def _noise_nodes(g: Any, node: Any, j: int, c: dict[str, str], cf: dict[str, str]) -> list[Any]:
    """The nodes that replace the j-th RandomNormalLike: index → two counter-based uniforms → Box–Muller."""
    from onnx import TensorProto, helper

    p = f"studio_noise{j}/"
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    mean, scale = float(attrs.get("mean", 0.0)), float(attrs.get("scale", 1.0))
    salt = _const(g, p + "salt", 1_000_003 * (j + 1), TensorProto.INT64)
    mk = helper.make_node
    nodes = [
        mk("Shape", [node.input[0]], [p + "shape"]),
        mk("ConstantOfShape", [p + "shape"], [p + "ones"], value=helper.make_tensor("v", TensorProto.INT64,
                                                                                     [1], [1])),
        mk("Reshape", [p + "ones", c["minus1"]], [p + "flat"]),
        mk("CumSum", [p + "flat", c["zero"]], [p + "idx"]),
        mk("Mul", [NOISE_SEED_INPUT, c["k"]], [p + "s0"]),
        mk("Add", [p + "s0", salt], [p + "s1"]),
        mk("Mod", [p + "s1", c["m"]], [p + "s"]),
        mk("Add", [p + "idx", p + "s"], [p + "x0"]),
    ]
    last = p + "x0"
    for r, mul in enumerate(("a", "b")):  # two rounds: a Lehmer step, then a square (non-linear) mix
        nodes += [mk("Mod", [last, c["m"]], [p + f"r{r}m"]),
                  mk("Mul", [p + f"r{r}m", c[mul]], [p + f"r{r}l"]),
                  mk("Mod", [p + f"r{r}l", c["m"]], [p + f"r{r}lm"]),
                  mk("Mul", [p + f"r{r}lm", p + f"r{r}lm"], [p + f"r{r}sq"]),
                  mk("Mod", [p + f"r{r}sq", c["m"]], [p + f"u{r}i"])]
        last = p + f"u{r}i"
    for r in range(2):
        nodes += [mk("Cast", [p + f"u{r}i"], [p + f"u{r}f"], to=TensorProto.FLOAT),
                  mk("Add", [p + f"u{r}f", cf["half"]], [p + f"u{r}h"]),
                  mk("Mul", [p + f"u{r}h", cf["inv_m"]], [p + f"u{r}"])]
    nodes += [mk("Log", [p + "u0"], [p + "log"]), mk("Mul", [p + "log", cf["m2"]], [p + "m2log"]),
              mk("Sqrt", [p + "m2log"], [p + "rad"]), mk("Mul", [p + "u1", cf["two_pi"]], [p + "ang"]),
              mk("Cos", [p + "ang"], [p + "cos"]), mk("Mul", [p + "rad", p + "cos"], [p + "z"])]
    z = p + "z"
    if scale != 1.0:
        nodes.append(mk("Mul", [z, _const(g, p + "scale", scale, TensorProto.FLOAT)], [p + "zs"]))
        z = p + "zs"
    if mean != 0.0:
        nodes.append(mk("Add", [z, _const(g, p + "mean", mean, TensorProto.FLOAT)], [p + "zm"]))
        z = p + "zm"
    nodes.append(mk("Reshape", [z, p + "shape"], [node.output[0]]))
    return nodes


def seeded_noise_graph(model: Any) -> Any | None:
    """A copy of the ONNX model whose random nodes read `studio_noise_seed`; None if it has none to replace."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    randoms = [n for n in g.node if n.op_type == "RandomNormalLike"]
    if not randoms or any(n.op_type in ("RandomUniformLike", "RandomNormal", "RandomUniform") for n in g.node):
        return None
    g.input.append(helper.make_tensor_value_info(NOISE_SEED_INPUT, TensorProto.INT64, [1]))
    c = {k: _const(g, f"studio_noise/{k}", v, TensorProto.INT64) for k, v in
         {"m": _M, "a": 16807, "b": 48271, "k": 7919, "minus1": [-1], "zero": 0}.items()}
    cf = {k: _const(g, f"studio_noise/{k}", v, TensorProto.FLOAT) for k, v in
          {"inv_m": 1.0 / _M, "half": 0.5, "m2": -2.0, "two_pi": 2 * math.pi}.items()}
    new_nodes = [(node, _noise_nodes(g, node, j, c, cf)) for j, node in enumerate(randoms)]
    for old, nodes in new_nodes:  # in place of each random node, keeping the graph topologically sorted
        at = list(g.node).index(old)
        g.node.remove(old)
        for k, n in enumerate(nodes):
            g.node.insert(at + k, n)
    return model


class SeededSession:
    """What piper's PiperVoice calls `session`: the voice's shared session, fed this line's noise seed."""

    def __init__(self, session: Any, seed: int):
        self._session, self._seed = session, np.array([int(seed) % _M], dtype=np.int64)

    def run(self, output_names, feeds, *args, **kwargs):
        return self._session.run(output_names, {**feeds, NOISE_SEED_INPUT: self._seed}, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)
