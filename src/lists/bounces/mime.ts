/**
 * A small, bounded MIME walk for bounce detection. Bounces come from every MTA ever written and some
 * are broken, so nothing here throws on bad input and every loop has a limit: the caller passes at
 * most `MAX_SCAN_BYTES`, the tree stops at `MAX_DEPTH` levels and `MAX_PARTS` parts, and decoded text
 * is capped per part (./decode.ts).
 *
 * We never descend into `message/rfc822` or `text/rfc822-headers`: that is the returned original
 * message, and whatever it says (a member quoting an old bounce, say) must not be taken for the
 * notification itself.
 *
 * Structure is parsed on a latin1 ("binary") string, which maps bytes 1:1, so offsets stay exact and
 * 8-bit bytes survive until a part is decoded with its own charset (./decode.ts).
 */

export const MAX_DEPTH = 8;
export const MAX_PARTS = 100;
const MAX_HEADER_FIELDS = 500;
const MAX_FIELD_LENGTH = 16 * 1024;

export interface HeaderField {
  /** lowercased */
  name: string;
  /** unfolded, surrounding blanks removed, still encoded (RFC 2047 words are not decoded) */
  value: string;
}

export interface MimePart {
  headers: HeaderField[];
  /** lowercased `type/subtype` */
  type: string;
  /** Content-Type parameters, names lowercased */
  params: Record<string, string>;
  /** the body as a latin1 string, still transfer-encoded */
  body: string;
  children: MimePart[];
}

/** The first value of a header field, or undefined. */
export function header(fields: readonly HeaderField[], name: string): string | undefined {
  for (const f of fields) if (f.name === name) return f.value;
  return undefined;
}

export function headerAll(fields: readonly HeaderField[], name: string): string[] {
  return fields.filter((f) => f.name === name).map((f) => f.value);
}

const FIELD_RE = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*)$/;

/**
 * Parse a header block starting at `start` of `text`. Returns the fields and where the body starts.
 * A line that is neither a field nor a continuation ends the block (lenient, as most readers are); a
 * leading mbox `From ` line is skipped.
 */
export function parseHeaderBlock(text: string, start = 0): { fields: HeaderField[]; bodyStart: number } {
  const fields: HeaderField[] = [];
  let pos = start;
  let first = true;
  let current: HeaderField | undefined;
  while (pos < text.length) {
    let nl = text.indexOf("\n", pos);
    if (nl < 0) nl = text.length;
    const line = text.slice(pos, nl).replace(/\r$/, "");
    if (line === "") return { fields, bodyStart: Math.min(nl + 1, text.length) };
    if (first && line.startsWith("From ")) {
      first = false;
      pos = nl + 1;
      continue;
    }
    first = false;
    if ((line[0] === " " || line[0] === "\t") && current) {
      if (current.value.length < MAX_FIELD_LENGTH) current.value += " " + line.trim();
    } else {
      const m = FIELD_RE.exec(line);
      if (!m) return { fields, bodyStart: pos };
      if (fields.length >= MAX_HEADER_FIELDS) {
        current = undefined; // keep reading past the excess, but stop storing it
      } else {
        current = { name: (m[1] ?? "").toLowerCase(), value: (m[2] ?? "").trim() };
        fields.push(current);
      }
    }
    pos = nl + 1;
  }
  return { fields, bodyStart: text.length };
}

/** `type/subtype; a=b; c="d"` → type and parameters (quoted strings unescaped). */
export function parseContentType(value: string | undefined): {
  type: string;
  params: Record<string, string>;
} {
  const params: Record<string, string> = {};
  if (value === undefined) return { type: "", params };
  const pieces = splitParams(value);
  const type = (pieces.shift() ?? "").trim().toLowerCase();
  for (const p of pieces) {
    const eq = p.indexOf("=");
    if (eq <= 0) continue;
    const name = p.slice(0, eq).trim().toLowerCase();
    let v = p.slice(eq + 1).trim();
    if (v.startsWith('"'))
      v = v.slice(1, v.endsWith('"') && v.length > 1 ? -1 : undefined).replace(/\\(.)/g, "$1");
    if (name && !(name in params)) params[name] = v;
  }
  return { type: /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : "", params };
}

/** Split on `;` outside double quotes. */
function splitParams(value: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === "\\" && quoted && i + 1 < value.length) {
      cur += c + value[++i];
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
    } else if (c === ";" && !quoted) {
      out.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

/**
 * Parse a whole message (latin1 string) into a part tree. Returns null when the text does not start
 * with a header block at all (binary junk, an empty file).
 */
export function parseMessage(text: string): MimePart | null {
  const { fields, bodyStart } = parseHeaderBlock(text);
  if (fields.length === 0) return null;
  const budget = { parts: 0 };
  return buildPart(fields, text.slice(bodyStart), "text/plain", 0, budget);
}

function buildPart(
  fields: HeaderField[],
  body: string,
  defaultType: string,
  depth: number,
  budget: { parts: number },
): MimePart {
  budget.parts++;
  const ct = parseContentType(header(fields, "content-type"));
  const type = ct.type || defaultType;
  const part: MimePart = { headers: fields, type, params: ct.params, body, children: [] };
  if (!type.startsWith("multipart/") || depth >= MAX_DEPTH) return part;
  // a boundary parameter lost to a broken fold ("boundary=" at the margin) is read from the body
  const boundary = ct.params["boundary"] || inferBoundary(body);
  if (!boundary) return { ...part, type: "text/plain" };
  const childDefault = type === "multipart/digest" ? "message/rfc822" : "text/plain";
  let pieces = splitMultipart(body, boundary);
  if (pieces.length === 0) {
    // the boundary in the header is not the one the body uses (seen after careless redaction and in
    // broken gateways): take the first delimiter-looking line; with none at all, read it as text
    const inferred = inferBoundary(body);
    if (inferred !== undefined) pieces = splitMultipart(body, inferred);
    if (pieces.length === 0) return { ...part, type: "text/plain" };
  }
  for (const raw of pieces) {
    if (budget.parts >= MAX_PARTS) break;
    const h = parseHeaderBlock(raw);
    part.children.push(buildPart(h.fields, raw.slice(h.bodyStart), childDefault, depth + 1, budget));
  }
  return part;
}

/** The boundary of the first line that looks like a delimiter (`--token`), within the first lines. */
function inferBoundary(body: string): string | undefined {
  let pos = 0;
  for (let n = 0; n < 200 && pos < body.length; n++) {
    let nl = body.indexOf("\n", pos);
    if (nl < 0) nl = body.length;
    const line = body.slice(pos, Math.min(nl, pos + 100)).replace(/\r$/, "");
    if (line.startsWith("--") && line.length > 4 && !/\s/.test(line)) return line.slice(2);
    pos = nl + 1;
  }
  return undefined;
}

/**
 * The bodies between `--boundary` delimiter lines (RFC 2046 5.1.1): the preamble and epilogue are
 * dropped, transport padding after a delimiter is allowed, and a missing close delimiter (a truncated
 * message) ends the last part at the end of the text.
 */
export function splitMultipart(body: string, boundary: string): string[] {
  const delim = "--" + boundary;
  const parts: string[] = [];
  let partStart = -1;
  // line by line, each line compared with the delimiter once: indexOf(delim) would retry a long
  // boundary at many offsets of lines that almost match it (quadratic in the boundary's length)
  for (let pos = 0; pos <= body.length;) {
    let eol = body.indexOf("\n", pos);
    if (eol < 0) eol = body.length;
    if (body.startsWith(delim, pos)) {
      const rest = body.slice(pos + delim.length, eol).replace(/\r$/, "");
      const closing = rest.startsWith("--");
      if (/^[ \t]*$/.test(closing ? rest.slice(2) : rest)) {
        if (partStart >= 0) {
          // the line break before the delimiter belongs to the delimiter
          let end = pos > 0 ? pos - 1 : 0;
          if (end > partStart && body[end - 1] === "\r") end--;
          parts.push(body.slice(partStart, Math.max(partStart, end)));
        }
        if (closing) return parts;
        partStart = eol + 1;
        if (parts.length >= MAX_PARTS) return parts;
      }
    }
    pos = eol + 1;
  }
  if (partStart >= 0 && partStart <= body.length) parts.push(body.slice(partStart));
  return parts;
}

/** The leaves of the tree in document order (multiparts flattened; message/rfc822 kept as a leaf). */
export function leaves(root: MimePart): MimePart[] {
  const out: MimePart[] = [];
  const stack: MimePart[] = [root];
  while (stack.length > 0) {
    const p = stack.pop() as MimePart;
    if (p.children.length > 0) {
      for (let i = p.children.length - 1; i >= 0; i--) stack.push(p.children[i] as MimePart);
    } else if (!p.type.startsWith("multipart/")) {
      out.push(p);
    }
  }
  return out;
}
