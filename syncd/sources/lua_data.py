"""A reader of Lua *data*: `return { ... }` of tables, strings, numbers, booleans and nil.

KOReader writes its sidecars (`metadata.<ext>.lua`) with its own serializer (frontend/dump.lua):
a `return` of one table constructor, keys `["name"] =` or `[1] =`, values of those kinds. That is
all this reads. Anything else (a function call, a variable, an operator, a second statement) is
code, and is refused with its line and column: nothing is ever executed.

Why not a library: `luaparser` (a full Lua 5.x grammar on the ANTLR runtime) parsed a 1,000-
annotation sidecar (550 KB) in 1.8 s here, and a device holds hundreds of sidecars; `slpp` is
unmaintained and regex-based. The data subset is small, and this reader parses the same file in
a few milliseconds, with exact positions in its errors.
"""

from __future__ import annotations

import math
import re
from typing import Union

LuaValue = Union[str, int, float, bool, None, "LuaTable"]
LuaTable = dict[object, object]  # keys: str, int, float or bool; values: LuaValue

MAX_DEPTH = 64  # nesting deeper than any sidecar: a hostile file must not blow the stack

_SPACE = re.compile(r"(?:\s+|--\[(=*)\[.*?\]\1\]|--[^\n]*)*", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(
    r"0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?"
    r"|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
)
_LONG_OPEN = re.compile(r"\[(=*)\[")
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "\n": "\n",
}
_KEYWORD_VALUES: dict[str, LuaValue] = {"true": True, "false": False, "nil": None}


class LuaDataError(ValueError):
    """Not Lua data (or not Lua at all); the message has the line and column."""


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, pos: int | None = None) -> LuaDataError:
        at = self.pos if pos is None else pos
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return LuaDataError(f"line {line}, column {column}: {message}")

    def skip(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        if match is not None:
            self.pos = match.end()

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        self.skip()
        if self.peek() != char:
            found = self.peek() or "the end of the file"
            raise self.fail(f"expected {char!r}, found {found!r}")
        self.pos += 1

    def value(self, depth: int) -> LuaValue:
        self.skip()
        char = self.peek()
        if char == "{":
            return self.table(depth + 1)
        if char in ('"', "'"):
            return self.quoted()
        if char == "[" and _LONG_OPEN.match(self.text, self.pos):
            return self.long_string()
        if (
            char == "-"
            or char.isdigit()
            or (char == "." and self.text[self.pos + 1 : self.pos + 2].isdigit())
        ):
            return self.number()
        name = _NAME.match(self.text, self.pos)
        if name is not None:
            word = name.group()
            if word in _KEYWORD_VALUES:
                self.pos = name.end()
                return _KEYWORD_VALUES[word]
            raise self.fail(f"{word!r} is code (a name or call), not data; refused")
        found = char or "the end of the file"
        raise self.fail(f"expected a value, found {found!r}")

    def number(self) -> int | float:
        start = self.pos
        negative = self.peek() == "-"
        if negative:
            self.pos += 1
            self.skip()
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise self.fail("'-' is an operator, not data; refused", start)
        self.pos = match.end()
        text = match.group()
        if _NAME.match(self.text, self.pos):
            raise self.fail(f"malformed number {text!r}", start)
        value: int | float
        if text[:2] in ("0x", "0X"):
            value = float.fromhex(text) if "." in text or "p" in text.lower() else int(text, 16)
        elif any(c in text for c in ".eE"):
            value = float(text)
        else:
            value = int(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail("number out of range", start)
        return -value if negative else value

    def quoted(self) -> str:
        quote = self.peek()
        start = self.pos
        self.pos += 1
        out: list[str] = []
        text = self.text
        while True:
            end = self.pos
            while end < len(text) and text[end] not in (quote, "\\", "\n"):
                end += 1
            out.append(text[self.pos : end])
            self.pos = end
            if end >= len(text) or text[end] == "\n":
                raise self.fail("unfinished string", start)
            if text[end] == quote:
                self.pos += 1
                return "".join(out)
            out.append(self.escape())

    def escape(self) -> str:
        text = self.text
        self.pos += 1  # the backslash
        char = text[self.pos : self.pos + 1]
        if char in _ESCAPES:
            self.pos += 1
            if char == "\n" and text[self.pos : self.pos + 1] == "\r":
                self.pos += 1
            return _ESCAPES[char]
        if char == "\r":
            self.pos += 1
            if text[self.pos : self.pos + 1] == "\n":
                self.pos += 1
            return "\n"
        if char.isdigit():
            digits = re.match(r"\d{1,3}", text[self.pos :])
            assert digits is not None
            self.pos += len(digits.group())
            code = int(digits.group())
            if code > 255:
                raise self.fail("decimal escape too large")
            return self.byte(code)
        if char == "x":
            hex_digits = text[self.pos + 1 : self.pos + 3]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", hex_digits):
                raise self.fail("bad \\x escape")
            self.pos += 3
            return self.byte(int(hex_digits, 16))
        if char == "z":
            self.pos += 1
            while self.pos < len(text) and text[self.pos].isspace():
                self.pos += 1
            return ""
        if char == "u":
            match = re.match(r"u\{([0-9a-fA-F]{1,8})\}", text[self.pos :])
            if match is None:
                raise self.fail("bad \\u escape")
            self.pos += match.end()
            code = int(match.group(1), 16)
            return chr(code) if code < 0x110000 else "\ufffd"
        raise self.fail(f"invalid escape '\\{char}'")

    def byte(self, code: int) -> str:
        # The file was decoded as UTF-8; a lone escaped byte is Latin-1 at best.
        return chr(code)

    def long_string(self) -> str:
        opening = _LONG_OPEN.match(self.text, self.pos)
        assert opening is not None
        closing = "]" + opening.group(1) + "]"
        end = self.text.find(closing, opening.end())
        if end < 0:
            raise self.fail("unfinished long string")
        body = self.text[opening.end() : end]
        self.pos = end + len(closing)
        return body[1:] if body.startswith("\n") else body

    def table(self, depth: int) -> LuaTable:
        if depth > MAX_DEPTH:
            raise self.fail(f"tables nested deeper than {MAX_DEPTH}")
        self.expect("{")
        result: LuaTable = {}
        next_index = 1
        while True:
            self.skip()
            if self.peek() == "}":
                self.pos += 1
                return result
            key: object
            key_pos = self.pos
            if self.peek() == "[" and not _LONG_OPEN.match(self.text, self.pos):
                self.pos += 1
                key = self.value(depth)
                self.expect("]")
                self.expect("=")
            else:
                name = _NAME.match(self.text, self.pos)
                after = _SPACE.match(self.text, name.end()) if name is not None else None
                if (
                    name is not None
                    and after is not None
                    and self.text[after.end() : after.end() + 1] == "="
                    and self.text[after.end() : after.end() + 2] != "=="
                    and name.group() not in _KEYWORD_VALUES
                ):
                    key = name.group()
                    self.pos = after.end() + 1
                else:
                    key = next_index
                    next_index += 1
            if key is None or (isinstance(key, float) and math.isnan(key)):
                raise self.fail("a table key cannot be nil", key_pos)
            if isinstance(key, float) and key.is_integer():
                key = int(key)
            result[key] = self.value(depth)
            self.skip()
            if self.peek() in (",", ";"):
                self.pos += 1
            elif self.peek() != "}":
                found = self.peek() or "the end of the file"
                raise self.fail(f"expected ',' or '}}' in a table, found {found!r}")


def read_lua_data(text: str) -> LuaValue:
    """The value of a file that is `return <value>` (optionally preceded by comments)."""
    reader = _Reader(text.lstrip("\ufeff"))
    if reader.text.startswith("#"):  # a shebang line, as Lua itself allows
        newline = reader.text.find("\n")
        reader.pos = len(reader.text) if newline < 0 else newline
    reader.skip()
    keyword = _NAME.match(reader.text, reader.pos)
    if keyword is None or keyword.group() != "return":
        raise reader.fail("a data file starts with 'return'; anything else is code, refused")
    reader.pos = keyword.end()
    value = reader.value(0)
    reader.skip()
    if reader.peek() == ";":
        reader.pos += 1
        reader.skip()
    if reader.pos != len(reader.text):
        raise reader.fail("more after the returned value: code, refused")
    return value
