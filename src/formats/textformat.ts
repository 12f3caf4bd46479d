import * as protobuf from 'protobufjs';
import { ModelshipError } from '../util/errors';

/**
 * A parser for the protobuf text format as Caffe's prototxt files use it, driven by protobufjs reflection:
 * the schema decides field types, enums and repetition, so the result has the same shape as a decoded message
 * (snake_case keys, repeated fields as arrays, enums as their names).
 *
 * Supported: `#` comments; nested messages with or without `:` before `{` (and `<...>`); repeated fields, also in
 * list form `f: [1, 2]`; enums by name or number; single/double quoted strings with C escapes and adjacent-string
 * concatenation; integers (decimal, hex, octal), floats with exponents, `inf`/`nan`, an `f` suffix; booleans;
 * proto3 map fields (`m { key: "k" value: ... }`, repeated or in list form; a later entry with the same key
 * replaces an earlier one, as protobuf does), read into a plain object keyed by the key's text; oneofs (a second
 * member of the same oneof is refused, as protobuf's own text parser does).
 *
 * Every message object carries a non-enumerable `$loc` (line/column of its opening) and `$fieldLocs`
 * (line/column of each field's first occurrence), which errors use to point at the source. Repeated fields also
 * get `$itemLocs` (line/column of each element's value), map objects `$fieldLocs` per key.
 */

export interface Loc {
  line: number;
  column: number;
}

export interface ParsedMessage {
  [field: string]: unknown;
}

export interface ParseOptions {
  /** file name for error messages */
  file: string;
  /**
   * Message type names whose unknown fields are tolerated (kept in `$unknown`) instead of rejected. Caffe layers
   * carry many `*_param` messages for layers we do not convert; a layer with an unknown type must still reach
   * the converter so the error can name the layer and its type.
   */
  tolerateUnknownIn?: string[];
}

type TokKind = 'ident' | 'number' | 'string' | 'punct' | 'eof';
interface Token {
  kind: TokKind;
  text: string;
  value?: string; // decoded string value
  line: number;
  column: number;
}

export function locOf(obj: unknown): Loc | undefined {
  return (obj as { $loc?: Loc } | undefined)?.$loc;
}

export function fieldLocOf(obj: unknown, field: string): Loc | undefined {
  return (obj as { $fieldLocs?: Record<string, Loc> } | undefined)?.$fieldLocs?.[field] ?? locOf(obj);
}

/** line/column of element `index` of repeated field `field` (its value token), else of the field */
export function itemLocOf(obj: unknown, field: string, index: number): Loc | undefined {
  return (obj as { $itemLocs?: Record<string, Loc[]> } | undefined)?.$itemLocs?.[field]?.[index] ?? fieldLocOf(obj, field);
}

export function unknownFieldsOf(obj: unknown): string[] {
  return (obj as { $unknown?: string[] } | undefined)?.$unknown ?? [];
}

function define(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: false, writable: true, configurable: true });
}

class Lexer {
  private pos = 0;
  private line = 1;
  private col = 1;
  private peeked: Token | undefined;

  constructor(
    private readonly src: string,
    private readonly file: string,
  ) {}

  fail(message: string, at: { line: number; column: number }): never {
    throw new ModelshipError('syntax', message, { file: this.file, line: at.line, column: at.column });
  }

  peek(): Token {
    if (!this.peeked) this.peeked = this.lex();
    return this.peeked;
  }

  next(): Token {
    const t = this.peek();
    this.peeked = undefined;
    return t;
  }

  private advance(n = 1): void {
    for (let i = 0; i < n; i++) {
      if (this.src.charCodeAt(this.pos) === 10) {
        this.line++;
        this.col = 1;
      } else {
        this.col++;
      }
      this.pos++;
    }
  }

  private skipSpaceAndComments(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
        this.advance();
      } else if (c === '#') {
        while (this.pos < s.length && s[this.pos] !== '\n') this.advance();
      } else {
        break;
      }
    }
  }

  private lex(): Token {
    this.skipSpaceAndComments();
    const s = this.src;
    const line = this.line;
    const column = this.col;
    if (this.pos >= s.length) return { kind: 'eof', text: '', line, column };
    const c = s[this.pos];
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(this.pos, this.pos + 256))!;
      this.advance(m[0].length);
      return { kind: 'ident', text: m[0], line, column };
    }
    if (/[0-9.\-+]/.test(c)) {
      const m = /^[-+]?(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?[fF]?|inf(?:inity)?|nan)/i.exec(s.slice(this.pos, this.pos + 64));
      if (!m || m[0] === '-' || m[0] === '+') {
        // a lone sign before an identifier such as `-inf` is handled by the regex; anything else is an error
        this.fail(`unexpected character '${c}'`, { line, column });
      }
      this.advance(m[0].length);
      return { kind: 'number', text: m[0], line, column };
    }
    if (c === '"' || c === "'") return this.lexString(c, line, column);
    if ('{}<>[]:,;'.includes(c)) {
      this.advance();
      return { kind: 'punct', text: c, line, column };
    }
    const code = c.charCodeAt(0);
    const shown = code < 32 || code > 126 ? `byte 0x${code.toString(16).padStart(2, '0')}` : `'${c}'`;
    this.fail(`unexpected character ${shown}`, { line, column });
  }

  private lexString(quote: string, line: number, column: number): Token {
    const s = this.src;
    this.advance(); // opening quote
    let out = '';
    for (;;) {
      if (this.pos >= s.length || s[this.pos] === '\n') this.fail('unterminated string', { line, column });
      const c = s[this.pos];
      if (c === quote) {
        this.advance();
        break;
      }
      if (c === '\\') {
        const e = s[this.pos + 1];
        if (e === undefined) this.fail('unterminated string', { line, column });
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '?': '?' };
        if (simple[e] !== undefined) {
          out += simple[e];
          this.advance(2);
        } else if (e === 'x' || e === 'X') {
          const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(this.pos + 2, this.pos + 4));
          if (!m) this.fail('bad \\x escape in string', { line: this.line, column: this.col });
          out += String.fromCharCode(parseInt(m[0], 16));
          this.advance(2 + m[0].length);
        } else if (/[0-7]/.test(e)) {
          const m = /^[0-7]{1,3}/.exec(s.slice(this.pos + 1, this.pos + 4))!;
          out += String.fromCharCode(parseInt(m[0], 8) & 0xff);
          this.advance(1 + m[0].length);
        } else {
          this.fail(`unknown escape '\\${e}' in string`, { line: this.line, column: this.col });
        }
        continue;
      }
      out += c;
      this.advance();
    }
    return { kind: 'string', text: quote, value: out, line, column };
  }
}

const INT_TYPES = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64']);
const FLOAT_TYPES = new Set(['float', 'double']);

class Parser {
  private readonly lx: Lexer;
  private readonly tolerate: Set<string>;

  constructor(
    src: string,
    private readonly opts: ParseOptions,
  ) {
    this.lx = new Lexer(src, opts.file);
    this.tolerate = new Set(opts.tolerateUnknownIn ?? []);
  }

  parseTop(type: protobuf.Type): ParsedMessage {
    const msg = this.newMessage({ line: 1, column: 1 });
    this.parseFields(type, msg, 'eof');
    return msg;
  }

  private newMessage(loc: Loc): ParsedMessage {
    const m: ParsedMessage = {};
    define(m, '$loc', loc);
    define(m, '$fieldLocs', {});
    return m;
  }

  private parseFields(type: protobuf.Type, msg: ParsedMessage, close: string): void {
    for (;;) {
      const t = this.lx.peek();
      if (close === 'eof' ? t.kind === 'eof' : t.kind === 'punct' && t.text === close) {
        this.lx.next();
        return;
      }
      if (t.kind === 'eof') this.lx.fail(`unexpected end of file: missing '${close}'`, t);
      if (t.kind !== 'ident') {
        this.lx.fail(`expected a field name, found ${describe(t)}`, t);
      }
      this.lx.next();
      const field = type.fields[t.text];
      if (!field) {
        if (this.tolerate.has(type.name)) {
          this.skipValue(t);
          const unknown = (msg as { $unknown?: string[] }).$unknown ?? [];
          unknown.push(t.text);
          define(msg, '$unknown', unknown);
          this.optionalSeparator();
          continue;
        }
        throw new ModelshipError('schema', `unknown field "${t.text}" in ${type.name}`, {
          file: this.opts.file,
          line: t.line,
          column: t.column,
          field: t.text,
        });
      }
      const fieldLocs = (msg as unknown as { $fieldLocs: Record<string, Loc> }).$fieldLocs;
      const oneof = field.partOf;
      if (oneof) {
        const other = oneof.oneof.find((name) => name !== field.name && Object.prototype.hasOwnProperty.call(msg, name));
        if (other !== undefined) {
          throw new ModelshipError('schema', `field "${field.name}" of ${type.name} is given along with "${other}": both belong to oneof "${oneof.name}"`, {
            file: this.opts.file,
            line: t.line,
            column: t.column,
            field: field.name,
          });
        }
      }
      if (!fieldLocs[t.text]) fieldLocs[t.text] = { line: t.line, column: t.column };
      this.parseFieldValue(type, field, msg, t);
      this.optionalSeparator();
    }
  }

  private optionalSeparator(): void {
    const t = this.lx.peek();
    if (t.kind === 'punct' && (t.text === ',' || t.text === ';')) this.lx.next();
  }

  private store(type: protobuf.Type, field: protobuf.Field, msg: ParsedMessage, value: unknown, at: Token, valueAt: Loc = at): void {
    if (field.repeated) {
      const arr = (msg[field.name] as unknown[] | undefined) ?? [];
      arr.push(value);
      msg[field.name] = arr;
      let itemLocs = (msg as { $itemLocs?: Record<string, Loc[]> }).$itemLocs;
      if (!itemLocs) define(msg, '$itemLocs', (itemLocs = {}));
      (itemLocs[field.name] ??= []).push({ line: valueAt.line, column: valueAt.column });
    } else {
      if (Object.prototype.hasOwnProperty.call(msg, field.name)) {
        throw new ModelshipError('schema', `non-repeated field "${field.name}" of ${type.name} is given more than once`, {
          file: this.opts.file,
          line: at.line,
          column: at.column,
          field: field.name,
        });
      }
      msg[field.name] = value;
    }
  }

  private parseFieldValue(type: protobuf.Type, field: protobuf.Field, msg: ParsedMessage, nameTok: Token): void {
    const resolved = field.resolvedType;
    let t = this.lx.peek();
    if (field.map) {
      // a map entry is a message { key: ... value: ... }: optional ':' then '{' or '<', or a list of entries
      if (t.kind === 'punct' && t.text === ':') {
        this.lx.next();
        t = this.lx.peek();
      }
      let map = msg[field.name] as Record<string, unknown> | undefined;
      if (!map) {
        map = {};
        define(map, '$fieldLocs', {});
        msg[field.name] = map;
      }
      if (t.kind === 'punct' && t.text === '[') {
        this.lx.next();
        this.parseList(() => this.parseMapEntry(field as unknown as protobuf.MapField, map));
        return;
      }
      this.parseMapEntry(field as unknown as protobuf.MapField, map);
      return;
    }
    if (resolved instanceof protobuf.Type) {
      // message: optional ':' then '{' or '<'; or a list of messages `f: [{...}, {...}]`
      if (t.kind === 'punct' && t.text === ':') {
        this.lx.next();
        t = this.lx.peek();
      }
      if (t.kind === 'punct' && t.text === '[') {
        this.lx.next();
        this.parseList(() => {
          const at = this.lx.peek();
          this.store(type, field, msg, this.parseMessageBody(resolved), nameTok, at);
        });
        return;
      }
      this.store(type, field, msg, this.parseMessageBody(resolved), nameTok, t);
      return;
    }
    if (!(t.kind === 'punct' && t.text === ':')) {
      this.lx.fail(`expected ':' after field "${field.name}", found ${describe(t)}`, t);
    }
    this.lx.next();
    t = this.lx.peek();
    if (t.kind === 'punct' && t.text === '[') {
      if (!field.repeated) this.lx.fail(`field "${field.name}" is not repeated; a list is not allowed`, t);
      this.lx.next();
      this.parseList(() => {
        const at = this.lx.peek();
        this.store(type, field, msg, this.parseScalar(field), nameTok, at);
      });
      return;
    }
    this.store(type, field, msg, this.parseScalar(field), nameTok, t);
  }

  /** One map entry `{ key: K value: V }` (both optional, protobuf defaults when left out) into `map`. */
  private parseMapEntry(field: protobuf.MapField, map: Record<string, unknown>): void {
    const open = this.lx.next();
    if (!(open.kind === 'punct' && (open.text === '{' || open.text === '<'))) {
      this.lx.fail(`expected '{' to open an entry of map field "${field.name}", found ${describe(open)}`, open);
    }
    const close = open.text === '{' ? '}' : '>';
    const keyField = { name: 'key', type: field.keyType, resolvedType: null } as unknown as protobuf.Field;
    const valueField = { name: 'value', type: field.type, resolvedType: field.resolvedType } as unknown as protobuf.Field;
    const entryName = `${field.name} entry`;
    let key: unknown;
    let value: unknown;
    let keyAt: Loc = { line: open.line, column: open.column };
    for (;;) {
      const t = this.lx.next();
      if (t.kind === 'punct' && t.text === close) break;
      if (t.kind === 'eof') this.lx.fail(`unexpected end of file: missing '${close}'`, t);
      if (t.kind !== 'ident') this.lx.fail(`expected "key" or "value" in ${entryName}, found ${describe(t)}`, t);
      if (t.text !== 'key' && t.text !== 'value') {
        throw new ModelshipError('schema', `unknown field "${t.text}" in ${entryName} (a map entry has only "key" and "value")`, {
          file: this.opts.file,
          line: t.line,
          column: t.column,
          field: t.text,
        });
      }
      if ((t.text === 'key' ? key : value) !== undefined) {
        throw new ModelshipError('schema', `"${t.text}" of ${entryName} is given more than once`, {
          file: this.opts.file,
          line: t.line,
          column: t.column,
          field: t.text,
        });
      }
      if (t.text === 'key') {
        if (!(this.lx.peek().kind === 'punct' && this.lx.peek().text === ':')) {
          this.lx.fail(`expected ':' after "key", found ${describe(this.lx.peek())}`, this.lx.peek());
        }
        this.lx.next();
        keyAt = { line: this.lx.peek().line, column: this.lx.peek().column };
        key = this.parseScalar(keyField);
      } else if (field.resolvedType instanceof protobuf.Type) {
        const p = this.lx.peek();
        if (p.kind === 'punct' && p.text === ':') this.lx.next();
        value = this.parseMessageBody(field.resolvedType);
      } else {
        if (!(this.lx.peek().kind === 'punct' && this.lx.peek().text === ':')) {
          this.lx.fail(`expected ':' after "value", found ${describe(this.lx.peek())}`, this.lx.peek());
        }
        this.lx.next();
        value = this.parseScalar(valueField);
      }
      this.optionalSeparator();
    }
    // a map's key is a scalar: a string, a bool or an integer
    const k = String((key as string | number | boolean | undefined) ?? (field.keyType === 'string' ? '' : field.keyType === 'bool' ? false : 0));
    if (value === undefined) value = defaultValue(field, { line: open.line, column: open.column }, (loc) => this.newMessage(loc));
    Object.defineProperty(map, k, { value, enumerable: true, writable: true, configurable: true });
    (map as unknown as { $fieldLocs: Record<string, Loc> }).$fieldLocs[k] = keyAt;
  }

  private parseList(item: () => void): void {
    const first = this.lx.peek();
    if (first.kind === 'punct' && first.text === ']') {
      this.lx.next();
      return;
    }
    for (;;) {
      item();
      const t = this.lx.next();
      if (t.kind === 'punct' && t.text === ']') return;
      if (!(t.kind === 'punct' && t.text === ',')) this.lx.fail(`expected ',' or ']' in list, found ${describe(t)}`, t);
    }
  }

  private parseMessageBody(type: protobuf.Type): ParsedMessage {
    const open = this.lx.next();
    if (!(open.kind === 'punct' && (open.text === '{' || open.text === '<'))) {
      this.lx.fail(`expected '{' to open ${type.name}, found ${describe(open)}`, open);
    }
    const msg = this.newMessage({ line: open.line, column: open.column });
    this.parseFields(type, msg, open.text === '{' ? '}' : '>');
    return msg;
  }

  private parseScalar(field: protobuf.Field): unknown {
    const t = this.lx.next();
    const resolved = field.resolvedType;
    const bad = (what: string): never => this.lx.fail(`field "${field.name}" expects ${what}, found ${describe(t)}`, t);
    if (resolved instanceof protobuf.Enum) {
      if (t.kind === 'ident') {
        if (!(t.text in resolved.values)) {
          bad(`one of ${Object.keys(resolved.values).join(', ')}`);
        }
        return t.text;
      }
      if (t.kind === 'number' && /^-?\d+$/.test(t.text)) {
        const n = Number(t.text);
        const name = resolved.valuesById[n];
        if (name === undefined) bad(`one of ${Object.keys(resolved.values).join(', ')}`);
        return name;
      }
      return bad(`an enum value`);
    }
    const ft = field.type;
    if (ft === 'string' || ft === 'bytes') {
      if (t.kind !== 'string') bad('a quoted string');
      let v = t.value!;
      // adjacent string literals are concatenated
      while (this.lx.peek().kind === 'string') v += this.lx.next().value!;
      return v;
    }
    if (ft === 'bool') {
      if (t.kind === 'ident' && ['true', 'True', 't'].includes(t.text)) return true;
      if (t.kind === 'ident' && ['false', 'False', 'f'].includes(t.text)) return false;
      if (t.kind === 'number' && (t.text === '1' || t.text === '0')) return t.text === '1';
      return bad('true or false');
    }
    if (FLOAT_TYPES.has(ft)) {
      let text = t.text;
      if (t.kind === 'ident' && /^(inf|infinity|nan)$/i.test(text)) text = text.toLowerCase();
      else if (t.kind !== 'number') bad('a number');
      return parseFloatLiteral(text) ?? bad('a number');
    }
    if (INT_TYPES.has(ft)) {
      if (t.kind !== 'number') bad('an integer');
      const v = parseIntLiteral(t.text);
      if (v === undefined) bad('an integer');
      if (ft.startsWith('uint') || ft === 'fixed32' || ft === 'fixed64') {
        if (v! < 0) bad('a non-negative integer');
      }
      if (ft.endsWith('32') && (v! > 0xffffffff || v! < -0x80000000)) bad('a 32-bit integer');
      return v;
    }
    return bad(`a value of type ${ft}`);
  }

  /** Skip the value of an unknown (tolerated) field: a scalar, a list, or a nested message. */
  private skipValue(nameTok: Token): void {
    let t = this.lx.peek();
    if (t.kind === 'punct' && t.text === ':') {
      this.lx.next();
      t = this.lx.peek();
      if (t.kind === 'punct' && t.text === '[') {
        this.lx.next();
        this.skipBalanced(']', t);
        return;
      }
      if (!(t.kind === 'punct' && (t.text === '{' || t.text === '<'))) {
        const v = this.lx.next();
        if (v.kind === 'eof' || v.kind === 'punct') this.lx.fail(`expected a value for field "${nameTok.text}", found ${describe(v)}`, v);
        if (v.kind === 'string') while (this.lx.peek().kind === 'string') this.lx.next();
        return;
      }
    }
    t = this.lx.next();
    if (!(t.kind === 'punct' && (t.text === '{' || t.text === '<'))) {
      this.lx.fail(`expected ':' or '{' after field "${nameTok.text}", found ${describe(t)}`, t);
    }
    this.skipBalanced(t.text === '{' ? '}' : '>', t);
  }

  private skipBalanced(close: string, open: Token): void {
    const stack = [close];
    while (stack.length) {
      const t = this.lx.next();
      if (t.kind === 'eof') this.lx.fail(`unexpected end of file: '${open.text}' opened here is not closed`, open);
      if (t.kind !== 'punct') continue;
      if (t.text === '{') stack.push('}');
      else if (t.text === '<') stack.push('>');
      else if (t.text === '[') stack.push(']');
      else if (t.text === stack[stack.length - 1]) stack.pop();
      else if ('}>]'.includes(t.text)) this.lx.fail(`unbalanced '${t.text}'`, t);
    }
  }
}

/** protobuf's default for a (map value) field: an empty message, the first enum value, '', false or 0 */
function defaultValue(field: { type: string; resolvedType: protobuf.ReflectionObject | null }, loc: Loc, newMessage: (loc: Loc) => ParsedMessage): unknown {
  const r = field.resolvedType;
  if (r instanceof protobuf.Type) return newMessage(loc);
  if (r instanceof protobuf.Enum) return r.valuesById[0] ?? Object.keys(r.values)[0];
  if (field.type === 'string' || field.type === 'bytes') return '';
  if (field.type === 'bool') return false;
  return 0;
}

function describe(t: Token): string {
  if (t.kind === 'eof') return 'end of file';
  if (t.kind === 'string') return 'a string';
  return `'${t.text}'`;
}

export function parseFloatLiteral(text: string): number | undefined {
  let s = text.toLowerCase();
  if (/^[-+]?(inf|infinity)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^[-+]?nan$/.test(s)) return NaN;
  if (/^[-+]?0x/.test(s)) return parseIntLiteral(text);
  if (s.endsWith('f')) s = s.slice(0, -1);
  if (!/^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

export function parseIntLiteral(text: string): number | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  const body = m[2];
  let v: number;
  if (/^0[xX]/.test(body)) v = parseInt(body.slice(2), 16);
  else if (body.length > 1 && body.startsWith('0')) v = parseInt(body, 8);
  else v = parseInt(body, 10);
  if (!Number.isSafeInteger(v)) return undefined;
  return m[1] === '-' ? -v : v;
}

/** Parse text-format `src` as message `type`. Throws ModelshipError('syntax' | 'schema') with file:line:column. */
export function parseTextFormat(src: string, type: protobuf.Type, opts: ParseOptions): ParsedMessage {
  return new Parser(src, opts).parseTop(type);
}
