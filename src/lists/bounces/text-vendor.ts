/**
 * Bounces without a delivery-status part from Microsoft Exchange / Office 365, and the plain-language
 * notices of everyone else (Sendmail's text, Gmail's, Yahoo's, "could not be delivered to:" from
 * small MTAs and ISPs). Every rule starts at a fixed sentence at the start of a line, so a quoted
 * ("> ...") or paraphrased sentence in a person's message does not match.
 */
import { cleanAddress, findAddresses } from "./address.js";
import type { BounceKind } from "./dsn.js";
import {
  MAX_SECTION_LINES,
  addressList,
  finding,
  findLine,
  isBlank,
  recipientParagraphs,
  trailingDiagnostic,
  withDiagnostic,
  type TextFinding,
  type TextMatch,
} from "./text-util.js";

const IMS_INTRO =
  /did not reach the following recipient\(s\)|following recipient\(s\) (?:could not|cannot) be reached/i;
const NDR_INTROS: ReadonlyArray<[RegExp, BounceKind]> = [
  [/^Delivery has failed to these recipients or (?:groups|distribution lists):/i, "permanent"],
  [/^\S.{0,200} rejected your message to the following (?:e-?mail )?address(?:es)?:/i, "permanent"],
  [/^Your message to [^\s@]{1,64}@[^\s@]{1,255} couldn't be delivered\./i, "permanent"],
  [/^Delivery is delayed to these recipients or (?:groups|distribution lists):/i, "temporary"],
];
const NDR_END = /^(?:Diagnostic information for administrators|Original message headers|_{5,})/i;

/**
 * Exchange NDRs. Exchange 5.5 to 2003 ("did not reach the following recipient(s)": `address on DATE`
 * lines, reasons indented, status as "#5.1.1"), and Exchange 2007+ / Office 365 ("Delivery has failed
 * to these recipients or groups:", one recipient a line, then per-address diagnostics under
 * "Diagnostic information for administrators").
 */
export function detectExchange(lines: readonly string[]): TextMatch | null {
  const ims = findLine(lines, IMS_INTRO);
  if (ims >= 0) return { format: "exchange", findings: imsRecipients(lines, ims) };
  for (const [re, kind] of NDR_INTROS) {
    const at = findLine(lines, re);
    if (at >= 0) return { format: "exchange", findings: ndrRecipients(lines, at, kind) };
  }
  return null;
}

function imsRecipients(lines: readonly string[], intro: number): TextFinding[] {
  const out: TextFinding[] = [];
  // Exchange 2003 may name the recipient by display name only ("'Leo' on 3/11/2025 9:16 AM"); the
  // address is then in the reason under it ("<gw.example.net #5.1.1 smtp;550 5.1.1 <leo@...>>")
  let cur: { address: string | undefined; diag: string[]; indent: number } | null = null;
  const close = (): void => {
    const address =
      cur?.address ??
      (cur ? findAddresses(cur.diag.filter((d) => /smtp;|#\d\.\d/i.test(d)).join(" "))[0] : undefined);
    if (cur && address !== undefined)
      out.push(finding(address, "permanent", "exchange recipient list", cur.diag));
    cur = null;
  };
  for (let i = intro + 1, end = Math.min(lines.length, intro + 1 + MAX_SECTION_LINES); i < end; i++) {
    const line = lines[i] as string;
    if (/^\s*(?:-{2,}|_{5,})/.test(line) || NDR_END.test(line)) break;
    const indent = line.length - line.trimStart().length;
    // "<recipient> on <date>": find " on <digit>" with one linear search, not a backtracking capture
    const on = line.search(/ on (?:\w{3}, )?\d/);
    if (on > indent && (cur === null || indent <= cur.indent)) {
      close();
      cur = { address: findAddresses(line.slice(0, on).replace(/\bSMTP[=:]/gi, " "))[0], diag: [], indent };
    } else if (cur && !isBlank(line) && indent > cur.indent) {
      cur.diag.push(line.trim());
    } else {
      close();
    }
  }
  close();
  return out;
}

function ndrRecipients(lines: readonly string[], intro: number, kind: BounceKind): TextFinding[] {
  const found = new Map<string, TextFinding>();
  const add = (address: string, diag: string[]): TextFinding => {
    const existing = found.get(address);
    if (existing) return existing;
    const f = finding(address, kind, "exchange recipient list", diag);
    found.set(address, f);
    return f;
  };
  // Office 365's newest text names the recipient in the intro sentence itself
  for (const a of findAddresses(lines[intro] as string)) add(a, []);
  let i = intro + 1;
  for (const end = Math.min(lines.length, intro + 1 + MAX_SECTION_LINES); i < end; i++) {
    const line = lines[i] as string;
    if (NDR_END.test(line)) break;
    const t = line.trim();
    const mailto = /<mailto:([^>\s]{1,320})>/i.exec(t);
    const lead = /^<?([^\s<>()@]{1,64}@[^\s<>()@]{1,255})>?(?=$|[\s(<])/.exec(t);
    const address = cleanAddress(mailto?.[1]) ?? cleanAddress(lead?.[1]);
    if (address !== undefined && (mailto || lead)) add(address, []);
  }
  // "Diagnostic information for administrators": the address alone on a line, then the server's reply
  const diagAt = findLine(lines, /^Diagnostic information for administrators/i, intro);
  if (diagAt >= 0) {
    for (let j = diagAt + 1, end = Math.min(lines.length, diagAt + 1 + MAX_SECTION_LINES); j < end; j++) {
      const line = lines[j] as string;
      if (/^Original message headers/i.test(line)) break;
      const t = line.trim();
      const address = t.includes("@") && !/\s/.test(t) ? cleanAddress(t) : undefined;
      if (address === undefined) continue;
      const diag: string[] = [];
      for (let k = j + 1; k < end && !isBlank(lines[k]) && diag.length < 4; k++)
        diag.push((lines[k] as string).trim());
      const f = add(address, []);
      const detail = finding(address, kind, f.source, diag);
      if (f.diagnostic === undefined && detail.diagnostic !== undefined) f.diagnostic = detail.diagnostic;
      if (f.status === undefined && detail.status !== undefined) f.status = detail.status;
    }
  }
  return [...found.values()];
}

interface PlainRule {
  name: string;
  intro: RegExp;
  kind: BounceKind;
  layout: "paragraphs" | "list" | "inline";
}

/** Ordered: the first rule whose intro is present and yields an address wins. */
const PLAIN_RULES: readonly PlainRule[] = [
  {
    name: "yahoo",
    intro: /^Sorry, we were unable to deliver your message to the following address/i,
    kind: "permanent",
    layout: "paragraphs",
  },
  {
    name: "yahoo",
    intro: /^Unable to deliver message to the following address/i,
    kind: "permanent",
    layout: "paragraphs",
  },
  {
    name: "sendmail",
    intro: /^\s*-+ ?The following addresses? had permanent fatal errors/i,
    kind: "permanent",
    layout: "list",
  },
  {
    name: "sendmail",
    intro: /^\s*-+ ?The following addresses? had transient non-fatal errors/i,
    kind: "temporary",
    layout: "list",
  },
  {
    name: "gmail",
    intro: /^Delivery to the following recipients? failed permanently:?\s*$/i,
    kind: "permanent",
    layout: "list",
  },
  {
    name: "gmail",
    intro: /^Delivery to the following recipients? has been delayed:?\s*$/i,
    kind: "temporary",
    layout: "list",
  },
  {
    name: "gmail",
    intro: /^Delivery to the following recipients? failed\.?:?\s*$/i,
    kind: "permanent",
    layout: "list",
  },
  {
    name: "gmail",
    intro: /^Your message wasn't delivered to [^\s@]{1,64}@[^\s@]{1,255} because/i,
    kind: "permanent",
    layout: "inline",
  },
  {
    name: "gmail",
    intro: /^There was a problem delivering your message to [^\s@]{1,64}@[^\s@]{1,255}/i,
    kind: "permanent",
    layout: "inline",
  },
  { name: "could-not-deliver", intro: /could not be delivered to:/i, kind: "permanent", layout: "inline" },
];

/** Sentences after which a shared reason follows. */
const REASON_RE =
  /^\s*(?:Technical details of (?:permanent|temporary) failure:|The response (?:from the remote server )?was:|Reason:|Remote host said:)/i;

/**
 * Plain-language notices. "inline" rules take the address from the intro line itself (each matching
 * line is one recipient, its reason on the indented lines under it), or, when the line names none,
 * from the address list that follows.
 */
export function detectPlain(lines: readonly string[]): TextMatch | null {
  let matched = false;
  for (const rule of PLAIN_RULES) {
    const source = `${rule.name} notice`;
    let findings: TextFinding[] = [];
    if (rule.layout === "inline") {
      for (
        let at = findLine(lines, rule.intro);
        at >= 0 && findings.length < 1000;
        at = findLine(lines, rule.intro, at + 1)
      ) {
        matched = true;
        const line = lines[at] as string;
        const tail = line.slice(line.search(rule.intro));
        const address = findAddresses(tail)[0];
        if (address === undefined) {
          findings.push(...addressList(lines, at, rule.kind, source));
          continue;
        }
        // the reason is on the lines under it: indented deeper, or as deep when the intro itself is
        // indented ("    Could not be delivered to: <a>" / "    As their mailbox is full.")
        const diag: string[] = [];
        const indent = line.length - line.trimStart().length;
        for (let k = at + 1; k < lines.length && diag.length < 6; k++) {
          const next = lines[k] as string;
          const nextIndent = next.length - next.trimStart().length;
          if (
            isBlank(next) ||
            rule.intro.test(next) ||
            nextIndent < indent ||
            (indent === 0 && nextIndent === 0)
          )
            break;
          diag.push(next.trim());
        }
        findings.push(finding(address, rule.kind, source, diag));
      }
    } else {
      const at = findLine(lines, rule.intro);
      if (at < 0) continue;
      matched = true;
      findings =
        rule.layout === "paragraphs"
          ? recipientParagraphs(lines, at, rule.kind, source)
          : addressList(lines, at, rule.kind, source);
    }
    if (findings.length > 0) {
      const from = findLine(lines, rule.intro);
      return {
        format: "plain",
        findings: withDiagnostic(findings, trailingDiagnostic(lines, from, REASON_RE)),
      };
    }
  }
  return matched ? { format: "plain", findings: [] } : null;
}
