"""The ``latent-jax`` command line (also ``python -m latent_jax``).

Each subcommand is an experiment module under :mod:`latent_jax.experiments` that defines its
own flags; this file registers them, shows every flag's default in ``--help``, applies a
``--config`` file (flags given on the command line win over it), turns on the persistent
compilation cache (unless ``--no-compile-cache`` or ``LATENT_JAX_NO_COMPILE_CACHE``) and
dispatches.

Every expected failure ends the command with one line on standard error, ``latent-jax
COMMAND: error: ...``, naming the flag or the file, and no traceback (``--verbose`` shows
it): bad flags or data, unreadable or missing files, an output folder that cannot be written
or is in use by another run (:mod:`latent_jax.runs.locks`), a full disk. Exit codes:
:data:`EXIT_ERROR` (2) for those, :data:`EXIT_DIVERGED` (3) for a training run whose loss
turned non-finite (its last good checkpoint stays on disk). SIGINT (Ctrl-C) or SIGTERM
during training finishes the compiled call in progress, writes a checkpoint and ends with
one line naming it (:mod:`latent_jax.train.interrupts`), exit code 130 or 143; a second
signal stops at once. A failed command removes what it wrote unless it wrote a checkpoint to
resume from (:func:`latent_jax.experiments.common.release_output_dirs`).
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import latent_jax
from latent_jax._deprecation import warn_deprecated
from latent_jax.experiments import common, tracking
from latent_jax.runs.locks import FolderInUseError
from latent_jax.train import interrupts
from latent_jax.train.driver import NonFiniteLossError

# The exit codes of a command that failed: an expected failure (one line on stderr), a
# training run that diverged.
EXIT_ERROR = 2
EXIT_DIVERGED = 3
# Ctrl-C: the shell's code for SIGINT (a SIGTERM exits 143; see latent_jax.train.interrupts).
EXIT_INTERRUPTED = 130
# Failures that are the user's input or the machine's state, not a bug: one line each.
EXPECTED_ERRORS = (ValueError, TypeError, OSError, FolderInUseError, NonFiniteLossError)
# What to do about a system error, by errno.
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere (--out)",
    errno.EDQUOT: "the disk quota is exceeded: free some space or write elsewhere (--out)",
    errno.EROFS: "the file system is read-only: write elsewhere (--out)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}

# subcommand -> (module under latent_jax.experiments, one-line help)
SUBCOMMANDS = {
    "pca": ("pca_summary", "fit PCA, print the explained-variance table, save the figure"),
    "reduce": (
        "reduce",
        "dimensionality reduction, PCA against an autoencoder (tutorial example 1)",
    ),
    "vae": ("vae_faces", "image generation with a convolutional VAE (tutorial example 2)"),
    "gan": ("gan", "image generation with a DCGAN on the VAE's data, figures and run folder"),
    "train": ("train_cli", "train an AE / VAE / ConvVAE on your data; many devices, many hosts"),
    "evaluate-vae": (
        "evaluate_vae",
        "IWAE bound, NLL, active units and KL per dimension of a VAE run",
    ),
    "linear-vae": ("linear_vae", "linear VAE against probabilistic PCA: ELBO, IWAE, angles"),
    "beta-study": ("beta_schedules", "beta schedules compared on digits over several seeds"),
    "iwae-table1": ("iwae_table1", "the IWAE paper's Table 1 on mnist-5k: VAE against IWAE"),
    "denoise": ("denoising", "denoising autoencoders against PCA projection and a plain AE"),
    "denoise-photo": (
        "denoise_photo",
        "a convolutional DAE on a real photograph against scikit-image's denoisers",
    ),
    "anomaly": ("anomaly", "anomaly detection: PCA, PPCA, AE, VAE against IsolationForest, OCSVM"),
    "one-class": ("one_class", "one-class MNIST (Ruff et al.): Deep SVDD and every detector"),
    "disentangle": (
        "disentangle",
        "a VAE of the family on procedural dSprites, scored by every disentanglement metric",
    ),
}
# Old subcommand names, accepted for one release with a DeprecationWarning: old -> new.
DEPRECATED_SUBCOMMANDS = {"evaluate": "evaluate-vae"}


def _renamed_subcommand(argv: list[str]) -> list[str]:
    """``argv`` with a deprecated subcommand (the first positional word) renamed, warning."""
    for index, word in enumerate(argv):
        if not word.startswith("-"):
            if word in DEPRECATED_SUBCOMMANDS:
                new = DEPRECATED_SUBCOMMANDS[word]
                warn_deprecated(f"the subcommand 'latent-jax {word}'", f"'latent-jax {new}'")
                return [*argv[:index], new, *argv[index + 1 :]]
            break
    return argv


_ROLE = re.compile(r":[a-z]+:`(~?)([^`<]+?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str) -> str:
    """Docstring markup as a terminal shows it: ``:func:`~a.b.c``` as ``c``,
    ``:mod:`a.b``` as ``a.b``, double-backquoted literals without their backquotes, and
    ``.. math::`` blocks kept as their formula."""

    def role(match: re.Match) -> str:
        target = match.group(2).strip()
        return target.rsplit(".", 1)[-1] if match.group(1) else target

    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(r"\1", text)
    return text.replace(".. math::", "")


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows a command's description as written (its lists and paragraphs), in
    plain text (:func:`plain_text`), and ends every flag's text with its default, as the
    command line writes it.

    A text that already states its default (``"(default"``) is left alone; a sequence is
    shown comma-separated, the way the flag takes it.
    """

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain_text(text))

    def _get_help_string(self, action: argparse.Action) -> str:
        return plain_text(self._help_with_default(action))

    def _help_with_default(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not action.option_strings
            or action.default is argparse.SUPPRESS
            or "(default" in text
            or isinstance(action, argparse._HelpAction | argparse._VersionAction)
        ):
            return text
        default = action.default
        if isinstance(default, list | tuple):
            shown = ",".join(str(v) for v in default)
        elif default is None:
            shown = "none"
        else:
            shown = str(default)
        return f"{text} (default: {shown.replace('%', '%%')})".strip()


def _suggestion(word: str, candidates: Sequence[str]) -> str:
    """`` (did you mean X?)`` for the candidate closest to a misspelled word, else ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class SuggestingParser(argparse.ArgumentParser):
    """An argument parser whose errors suggest the flag, subcommand or choice the user meant
    (``--lerning-rate`` -> ``--learning-rate``, ``vea`` -> ``vae``)."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        """argparse's ``parse_args``, with the nearest flag suggested for an unknown one."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            target = _subparsers(self).get(getattr(parsed, "command", None)) or self
            flags = [flag for action in target._actions for flag in action.option_strings]
            hints = "".join(
                _suggestion(word.split("=", 1)[0], flags) for word in extras if word.startswith("-")
            )
            target.error(f"unrecognized arguments: {' '.join(extras)}{hints}")
        return parsed

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as error:
            if action.choices is None or not isinstance(value, str):
                raise
            hint = _suggestion(value, [str(choice) for choice in action.choices])
            raise argparse.ArgumentError(action, f"{error.message}{hint}") from None


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Subcommand name -> its parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = SuggestingParser(
        prog="latent-jax",
        description="Latent representations in JAX: PCA, autoencoders, VAEs.",
    )
    parser.add_argument(
        "--version", action="version", version=f"latent-jax {latent_jax.__version__}"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log debug messages and show the traceback of a failure",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(f"latent_jax.experiments.{module_name}")
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=DefaultsHelpFormatter,
        )
        module.add_arguments(sub)
        # Also accepted after the subcommand; SUPPRESS keeps the global flag's value.
        sub.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log debug messages and show the traceback of a failure (default: off)",
        )
        if not any(a.dest == "no_compile_cache" for a in sub._actions):
            common.add_compile_cache_argument(sub)
        sub.set_defaults(run=module.run, arguments=module.Arguments)
    return parser


def parse_args(
    argv: Sequence[str], parser: argparse.ArgumentParser | None = None
) -> argparse.Namespace:
    """Parses ``argv`` as :func:`main` does, a ``--config FILE`` included.

    The file's settings become the subcommand's defaults and ``argv`` is parsed again, so a
    flag given on the command line overrides the file's value.

    Raises:
        FileNotFoundError: for a missing config file.
        ValueError: for a config file that does not fit the subcommand (naming the file).
    """
    parser = build_parser() if parser is None else parser
    argv = _renamed_subcommand(list(argv))
    args = parser.parse_args(argv)
    path = getattr(args, "config", None)
    if path is None:
        return args
    sub = _subparsers(parser)[args.command]
    module = importlib.import_module(f"latent_jax.experiments.{SUBCOMMANDS[args.command][0]}")
    training_flags = getattr(module, "TRAINING_FLAGS", common.TRAINING_FLAGS)
    sub.set_defaults(**common.config_defaults(path, sub, args.command, training_flags))
    return parser.parse_args(argv)


def parse_command(argv: Sequence[str]) -> common.CommandArguments:
    """The typed arguments of a command line (``[subcommand, *flags]``), as :func:`main`
    hands them to the subcommand (a ``--config FILE`` included).

    Raises:
        SystemExit: for flags the parser refuses (as :func:`main`).
        ValueError: for a config file that does not fit the subcommand.
    """
    args = parse_args(argv)
    return args.arguments.from_mapping(vars(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` (default: ``sys.argv[1:]``), runs the subcommand, returns an exit code."""
    parser = build_parser()
    with warnings.catch_warnings():
        # The library's own deprecations (old flag values, renamed subcommands) are shown to
        # the user of the command line; Python hides DeprecationWarnings by default.
        warnings.filterwarnings("default", category=DeprecationWarning, module=r"latent_jax\b")
        return _main(parser, list(sys.argv[1:] if argv is None else argv))


def describe_error(error: BaseException) -> tuple[str, int]:
    """The one line a command prints for an expected failure, and its exit code.

    Args:
        error: one of :data:`EXPECTED_ERRORS`.

    Returns:
        ``(message, exit code)``: a system error (:class:`OSError` with an errno) reads
        ``FILE: what went wrong`` with what to do about it; a divergence exits with
        :data:`EXIT_DIVERGED`, everything else with :data:`EXIT_ERROR`.
    """
    if isinstance(error, NonFiniteLossError):
        return str(error), EXIT_DIVERGED
    if isinstance(error, OSError) and error.strerror:
        what = _OS_HINTS.get(error.errno, error.strerror[:1].lower() + error.strerror[1:])
        files = [f for f in (error.filename, error.filename2) if f is not None]
        where = " -> ".join(repr(os.fsdecode(f)) for f in files)
        return (f"{where}: {what}" if where else f"{what} ({error.strerror})"), EXIT_ERROR
    return " ".join(str(error).split("\n")), EXIT_ERROR


def _fail(args: argparse.Namespace, error: BaseException) -> int:
    """Prints ``error`` as one line (or raises it again with ``--verbose``); the exit code."""
    if getattr(args, "verbose", False):
        raise error
    message, code = describe_error(error)
    print(f"latent-jax {args.command}: error: {message}", file=sys.stderr)
    return code


def _main(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    args = parser.parse_args(_renamed_subcommand(argv))
    if getattr(args, "config", None) is not None:
        try:
            args = parse_args(argv, build_parser())
        except EXPECTED_ERRORS as error:
            return _fail(args, error)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # JAX logs its platform probing at INFO; keep the user's terminal for our own messages.
    logging.getLogger("jax").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if args.command is None:
        parser.print_help()
        return 2
    # The command's typed arguments: below this line nothing reads the parsed flags.
    arguments = args.arguments.from_mapping(vars(args))
    # Before anything compiles: programs compiled by an earlier run are reused.
    common.enable_compile_cache(arguments)
    failed = True
    try:
        with interrupts.stop_on_signals(), tracking.command_tracker(arguments, args.command):
            args.run(arguments)
        failed = False
    except EXPECTED_ERRORS as error:
        return _fail(args, error)
    except interrupts.Interrupted as stop:
        print(f"latent-jax {args.command}: {describe_interrupt(stop)}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:  # a second signal while the first one's checkpoint was due
        print(f"latent-jax {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        common.release_output_dirs(failed)
    return 0


def describe_interrupt(stop: interrupts.Interrupted) -> str:
    """The one line a command interrupted by a signal prints: where its work is, what next."""
    if stop.checkpoint is not None:
        return (
            f"{stop}; to continue, run the same command with --resume (the run folder keeps "
            "its checkpoints)"
        )
    if stop.epoch is not None:
        return f"{stop}; this run writes no checkpoints, so nothing trained was kept"
    return str(stop)


if __name__ == "__main__":
    sys.exit(main())
