"""CycleGAN networks (seed 000 pretraining): a ResNet generator and a PatchGAN discriminator, plus their losses.

Generator (Zhu et al. 2017, sized down for a small CPU): c7s1-ngf, two stride-2 3x3 convs (2ngf, 4ngf),
``n_res`` residual blocks at 4ngf, two stride-2 transposed convs (2ngf, ngf), c7s1-3 with tanh. Reflection
padding before the 7x7 and residual convs, instance normalisation (affine, :class:`InstanceNormalization`) after
every conv but the last. Images are (H, W, 3) in [-1, 1]; H and W must be multiples of 4.

Discriminator: ``n_down`` stride-2 4x4 convs (ndf, 2ndf, 4ndf, ...; LeakyReLU 0.2, instance norm from the second
on) and a stride-1 4x4 conv to a 1-channel patch map of raw scores (no sigmoid): an (H, W) image gives an
(H / 2^n_down, W / 2^n_down) map. LSGAN (CycleGAN) and Wasserstein (CycleWGAN) losses read the same map.
"""

from __future__ import annotations

import keras
from keras import layers, ops

INIT = keras.initializers.RandomNormal(0.0, 0.02)  # the CycleGAN/DCGAN weight init


@keras.saving.register_keras_serializable("lpr_sdk")
class ReflectionPad2D(layers.Layer):
    """Pad height and width by ``pad`` pixels on each side, mirroring the image (no border seams)."""

    def __init__(self, pad: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, x):
        p = self.pad
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, shape):
        n, h, w, c = shape
        return (n, None if h is None else h + 2 * self.pad, None if w is None else w + 2 * self.pad, c)

    def get_config(self) -> dict:
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable("lpr_sdk")
class InstanceNormalization(layers.Layer):
    """Per-sample, per-channel normalisation over height and width with a learned scale and offset (on a CPU
    about a third cheaper to train than ``GroupNormalization(groups=-1)``, the same function)."""

    def __init__(self, epsilon: float = 1e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, shape) -> None:
        self.gamma = self.add_weight(name="gamma", shape=(shape[-1],), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(shape[-1],), initializer="zeros")

    def call(self, x):
        mean, var = ops.moments(x, axes=[1, 2], keepdims=True)
        return (x - mean) * ops.rsqrt(var + self.epsilon) * self.gamma + self.beta

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}


def _norm(name: str) -> layers.Layer:
    return InstanceNormalization(name=name)


def _conv(x, filters: int, k: int, stride: int, name: str, reflect: int = 0):
    if reflect:
        x = ReflectionPad2D(reflect, name=f"{name}_pad")(x)
    pad = "valid" if reflect else "same"
    return layers.Conv2D(filters, k, stride, padding=pad, kernel_initializer=INIT, name=f"{name}_conv")(x)


def build_generator(image_size: tuple[int, int], ngf: int = 16, n_res: int = 3, name: str = "generator") -> keras.Model:
    """The ResNet generator: (N, H, W, 3) in [-1, 1] to the same shape in [-1, 1].

    Args:
        image_size: (height, width), both multiples of 4.
        ngf: filters of the first conv (then 2ngf, 4ngf).
        n_res: residual blocks at the bottleneck (stride 4).
        name: the model's name.
    """
    h, w = image_size
    if h % 4 or w % 4:
        raise ValueError(f"generator image size must be multiples of 4, got {h}x{w}")
    inp = keras.Input((h, w, 3), name="image")
    x = layers.ReLU()(_norm("c7_in")(_conv(inp, ngf, 7, 1, "c7", reflect=3)))
    for i, f in enumerate((2 * ngf, 4 * ngf)):
        x = layers.ReLU()(_norm(f"down{i}_in")(_conv(x, f, 3, 2, f"down{i}")))
    for i in range(n_res):
        y = layers.ReLU()(_norm(f"res{i}a_in")(_conv(x, 4 * ngf, 3, 1, f"res{i}a", reflect=1)))
        y = _norm(f"res{i}b_in")(_conv(y, 4 * ngf, 3, 1, f"res{i}b", reflect=1))
        x = layers.Add(name=f"res{i}_add")([x, y])
    for i, f in enumerate((2 * ngf, ngf)):
        x = layers.Conv2DTranspose(f, 3, 2, padding="same", kernel_initializer=INIT, name=f"up{i}_conv")(x)
        x = layers.ReLU()(_norm(f"up{i}_in")(x))
    out = layers.Activation("tanh", name="tanh")(_conv(x, 3, 7, 1, "out", reflect=3))
    return keras.Model(inp, out, name=name)


def build_discriminator(
    image_size: tuple[int, int], ndf: int = 16, n_down: int = 3, name: str = "discriminator"
) -> keras.Model:
    """The PatchGAN discriminator (critic): (N, H, W, 3) in [-1, 1] to a (N, H / 2^n_down, W / 2^n_down, 1) map
    of raw scores.

    Args:
        image_size: (height, width), both divisible by ``2 ** n_down``.
        ndf: filters of the first conv, doubled at each further stride-2 conv.
        n_down: stride-2 4x4 convs.
        name: the model's name.
    """
    inp = keras.Input((*image_size, 3), name="image")
    x = inp
    for i in range(n_down):
        x = _conv(x, ndf * 2**i, 4, 2, f"d{i}")
        if i:
            x = _norm(f"d{i}_in")(x)
        x = layers.LeakyReLU(0.2)(x)
    out = _conv(x, 1, 4, 1, "patch")
    return keras.Model(inp, out, name=name)


# --- losses (on patch maps) -----------------------------------------------------------------------------------


def lsgan_d_loss(real_scores, fake_scores):
    """LSGAN discriminator loss: 0.5 * (E[(D(real) - 1)^2] + E[D(fake)^2])."""
    return 0.5 * (ops.mean(ops.square(real_scores - 1.0)) + ops.mean(ops.square(fake_scores)))


def lsgan_g_loss(fake_scores):
    """LSGAN generator loss: E[(D(G(x)) - 1)^2]."""
    return ops.mean(ops.square(fake_scores - 1.0))


def wgan_d_loss(real_scores, fake_scores):
    """Wasserstein critic loss: E[D(fake)] - E[D(real)] (minimised)."""
    return ops.mean(fake_scores) - ops.mean(real_scores)


def wgan_g_loss(fake_scores):
    """Wasserstein generator loss: -E[D(G(x))]."""
    return -ops.mean(fake_scores)


def l1(a, b):
    """Mean absolute difference (cycle and identity losses)."""
    return ops.mean(ops.abs(a - b))
