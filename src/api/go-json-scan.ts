/**
 * The first JSON value of a text, scanned as Go's encoding/json Decoder scans
 * it, so that a malformed body gets the gateway's very error: "invalid
 * character 'x' <where>", or "unexpected EOF" when the text stops inside the
 * value. Only the grammar is checked here; json-pb.ts turns the value into a
 * message.
 *
 * As the Decoder, it stops at the end of the first value: an object or array
 * at its closing bracket, a string at its closing quote, a number or literal
 * at the first byte that cannot continue it; whatever follows is not read.
 */

import { goQuote } from '../base/index.js';

export type GoJsonScan =
  | { readonly kind: 'value'; readonly end: number }
  | { readonly kind: 'error'; readonly message: string }
  /** The text ended inside the value (or held nothing but spaces). */
  | { readonly kind: 'incomplete' };

type Container = '{' | '[';

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isHex = (c: string): boolean => isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');

/** Go's quoteChar: the byte (of a non-ASCII character, its first UTF-8 byte, taken as a rune) as strconv.Quote writes it. */
function quoteChar(ch: string): string {
  if (ch === "'") return "'\\''";
  if (ch === '"') return `'"'`;
  let code = ch.codePointAt(0) ?? 0;
  if (code >= 0x80) code = Buffer.from(ch, 'utf8')[0] ?? 0;
  return `'${goQuote(String.fromCharCode(code)).slice(1, -1)}'`;
}

/** What a literal still expects after its first letter. */
const literals: Readonly<Record<string, string>> = { t: 'true', f: 'false', n: 'null' };

/** Undefined: go on; otherwise how the scan ended. */
type Step = GoJsonScan | undefined;

const incomplete: GoJsonScan = { kind: 'incomplete' };

export function scanGoJson(text: string): GoJsonScan {
  return new Scanner(text).run();
}

/**
 * A whole text checked as json.Unmarshal checks it: the end of the text is
 * stepped as a space (so "12e" is "invalid character ' ' in exponent of
 * numeric literal"), and anything but spaces after the value is "after
 * top-level value". Null when fine; otherwise Go's message.
 */
export function checkGoJson(text: string): string | null {
  const scan = scanGoJson(`${text} `);
  if (scan.kind === 'error') return scan.message;
  if (scan.kind === 'incomplete') return 'unexpected end of JSON input';
  const rest = /\S/.exec(text.slice(scan.end));
  return rest === null ? null : `invalid character ${quoteChar(rest[0])} after top-level value`;
}

class Scanner {
  private i = 0;
  private readonly stack: Container[] = [];

  constructor(private readonly text: string) {}

  run(): GoJsonScan {
    // Each turn reads one value (a container's first element included), then what follows it.
    for (;;) {
      const begun = this.beginValue();
      if (begun === 'element') continue;
      if (begun !== undefined) return begun;
      const after = this.afterValue();
      if (after !== undefined) return after;
    }
  }

  private fail(ch: string, where: string): GoJsonScan {
    return { kind: 'error', message: `invalid character ${quoteChar(ch)} ${where}` };
  }

  private get top(): Container | undefined {
    return this.stack[this.stack.length - 1];
  }

  /** Skips spaces; false at the end of the text. */
  private skip(): boolean {
    while (this.i < this.text.length && isSpace(this.text[this.i] as string)) this.i++;
    return this.i < this.text.length;
  }

  /** Reads a value, or opens a container: 'element' when its first element is to be read next. */
  private beginValue(): Step | 'element' {
    if (!this.skip()) return incomplete;
    const c = this.text[this.i] as string;
    if (c === '{' || c === '[') {
      this.stack.push(c);
      this.i++;
      if (!this.skip()) return incomplete;
      if (this.text[this.i] === (c === '{' ? '}' : ']')) {
        this.stack.pop();
        this.i++;
        return undefined;
      }
      return c === '{' ? (this.objectKey() ?? 'element') : 'element';
    }
    if (c === '"') return this.stringBody();
    if (c === '-' || isDigit(c)) return this.numberBody();
    const word = literals[c];
    if (word === undefined) return this.fail(c, 'looking for beginning of value');
    for (let k = 1; k < word.length; k++) {
      this.i++;
      if (this.i >= this.text.length) return incomplete;
      if (this.text[this.i] !== word[k]) return this.fail(this.text[this.i] as string, `in literal ${word} (expecting '${word[k] as string}')`);
    }
    this.i++;
    return undefined;
  }

  /** After a whole value: closes containers, and stops at the end of the first value or before the next element. */
  private afterValue(): Step {
    for (;;) {
      const top = this.top;
      // The first value ends here: the Decoder reads nothing after it (a byte that
      // cannot follow it would only be reported by a next Decode).
      if (top === undefined) return { kind: 'value', end: this.i };
      if (!this.skip()) return incomplete;
      const c = this.text[this.i] as string;
      if (c === (top === '{' ? '}' : ']')) {
        this.stack.pop();
        this.i++;
        continue;
      }
      if (c !== ',') return this.fail(c, top === '{' ? 'after object key:value pair' : 'after array element');
      this.i++;
      if (top === '[') return undefined;
      if (!this.skip()) return incomplete;
      return this.objectKey();
    }
  }

  /** At an object key: the key string and its colon. */
  private objectKey(): Step {
    if (this.text[this.i] !== '"') return this.fail(this.text[this.i] as string, 'looking for beginning of object key string');
    const s = this.stringBody();
    if (s !== undefined) return s;
    if (!this.skip()) return incomplete;
    if (this.text[this.i] !== ':') return this.fail(this.text[this.i] as string, 'after object key');
    this.i++;
    return undefined;
  }

  /** At a '"': the string through its closing quote. */
  private stringBody(): Step {
    const t = this.text;
    for (this.i++; this.i < t.length; this.i++) {
      const c = t[this.i] as string;
      if (c === '"') {
        this.i++;
        return undefined;
      }
      if (c < ' ') return this.fail(c, 'in string literal');
      if (c !== '\\') continue;
      this.i++;
      if (this.i >= t.length) break;
      const e = t[this.i] as string;
      if (e === 'u') {
        for (let k = 0; k < 4; k++) {
          this.i++;
          if (this.i >= t.length) return incomplete;
          if (!isHex(t[this.i] as string)) return this.fail(t[this.i] as string, 'in \\u hexadecimal character escape');
        }
      } else if (!'"\\/bfnrt'.includes(e)) {
        return this.fail(e, 'in string escape code');
      }
    }
    return incomplete;
  }

  /** At a '-' or digit: the number. */
  private numberBody(): Step {
    const at = (): string | undefined => this.text[this.i];
    const digits = (): void => {
      while (isDigit(at() ?? '')) this.i++;
    };
    if (at() === '-') {
      this.i++;
      const c = at();
      if (c === undefined) return incomplete;
      if (!isDigit(c)) return this.fail(c, 'in numeric literal');
    }
    if (at() === '0') this.i++;
    else digits();
    if (at() === '.') {
      this.i++;
      const c = at();
      if (c === undefined) return incomplete;
      if (!isDigit(c)) return this.fail(c, 'after decimal point in numeric literal');
      digits();
    }
    if (at() === 'e' || at() === 'E') {
      this.i++;
      if (at() === '+' || at() === '-') this.i++;
      const c = at();
      if (c === undefined) return incomplete;
      if (!isDigit(c)) return this.fail(c, 'in exponent of numeric literal');
      digits();
    }
    // A number at the very end of the text is whole only at the top level (the Decoder's EOF rule).
    if (at() === undefined && this.stack.length > 0) return incomplete;
    return undefined;
  }
}
