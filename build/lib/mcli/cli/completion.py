"""`mcli completion bash|zsh`: a completion script generated from the argparse tree, so it never goes stale.

Each command path (`mcli`, `mcli get`, `mcli get runs`, ...) maps to the words that may follow it: its
subcommands and its options. The shell function walks the words typed so far down that tree.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

_BASH = """\
# mcli completion for bash. Load it with:  source <(mcli completion bash)
_mcli() {{
  local -A tree=(
{entries}
  )
  local cmd="mcli" word i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${{COMP_WORDS[i]}}"
    [[ $word == -* ]] && continue
    [[ -n "${{tree[$cmd $word]+set}}" ]] && cmd="$cmd $word"
  done
  COMPREPLY=($(compgen -W "${{tree[$cmd]}}" -- "${{COMP_WORDS[COMP_CWORD]}}"))
}}
complete -o default -F _mcli mcli
"""

_ZSH = """\
#compdef mcli
# mcli completion for zsh. Load it with:  source <(mcli completion zsh)
_mcli() {{
  local -A tree
  tree=(
{entries}
  )
  local cmd="mcli" word
  for word in ${{words[2,CURRENT-1]}}; do
    [[ $word == -* ]] && continue
    (( ${{+tree[$cmd $word]}} )) && cmd="$cmd $word"
  done
  if [[ ${{words[CURRENT-1]}} == (-f|--file) ]]; then
    _files
  else
    compadd -- ${{=tree[$cmd]}}
  fi
}}
compdef _mcli mcli
"""


def _tree(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, list[str]]]:
    words: list[str] = []
    children: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words.append(name)
                children.append((name, child))
        elif action.help is not argparse.SUPPRESS:
            words.extend(option for option in action.option_strings if option.startswith("--"))
    yield path, words
    for name, child in children:
        yield from _tree(child, f"{path} {name}")


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    pairs = list(_tree(parser, "mcli"))
    if shell == "bash":
        entries = "\n".join(f"    [{shlex.quote(path)}]={shlex.quote(' '.join(words))}" for path, words in pairs)
        return _BASH.format(entries=entries)
    entries = "\n".join(f"    {shlex.quote(path)} {shlex.quote(' '.join(words))}" for path, words in pairs)
    return _ZSH.format(entries=entries)
