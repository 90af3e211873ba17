/**
 * Why a delivery failed, in the vocabulary of Sisimai (https://libsisimai.org, BSD-2): userunknown,
 * mailboxfull, hostunknown, blocked, ... and whether that makes the bounce hard (the address is dead:
 * the member should go) or soft (it may pass another day: a full mailbox, a refusal of our content or
 * of our host, a delay).
 *
 * Two sources, as Sisimai does it: the RFC 3463 status code when it names a specific cause (5.2.2 is a
 * full mailbox whatever the words), and otherwise the words the servers write ("User unknown", "Quota
 * exceeded", ...), matched as lowercased substrings in a fixed order (first match wins), then the
 * status class as a last resort. The phrase lists are our own condensation of the patterns Sisimai's
 * lib/sisimai/reason/*.rb match (credit to its authors); the status table follows its
 * lib/sisimai/smtp/status.rb. Substring search over a capped text: linear, no regex backtracking.
 */

export type BounceReason =
  | "userunknown"
  | "hostunknown"
  | "hasmoved"
  | "notaccept"
  | "mailboxfull"
  | "mesgtoobig"
  | "exceedlimit"
  | "suspend"
  | "norelaying"
  | "filtered"
  | "rejected"
  | "blocked"
  | "spamdetected"
  | "virusdetected"
  | "policyviolation"
  | "securityerror"
  | "toomanyconn"
  | "expired"
  | "networkerror"
  | "systemfull"
  | "systemerror"
  | "mailererror"
  | "contenterror"
  | "syntaxerror"
  | "onhold"
  | "delayed"
  | "undefined";

/** The reasons that make a bounce hard: the mailbox or its domain does not exist (any more). */
const HARD: ReadonlySet<BounceReason> = new Set(["userunknown", "hostunknown", "hasmoved"]);

/** Longest text examined: the server's reply is at the start, the rest is boilerplate. */
const MAX_REASON_TEXT = 8 * 1024;

/** Status codes that name a cause on their own (after RFC 3463 and Sisimai's table). */
const STATUS_REASON: Readonly<Record<string, BounceReason>> = {
  "1.0": "userunknown",
  "1.1": "userunknown",
  "1.2": "hostunknown",
  "1.3": "userunknown",
  "1.4": "filtered",
  "1.6": "hasmoved",
  "1.7": "rejected",
  "1.8": "rejected",
  "1.9": "systemerror",
  "1.10": "notaccept",
  "2.0": "filtered",
  "2.1": "filtered",
  "2.2": "mailboxfull",
  "2.3": "exceedlimit",
  "2.4": "filtered",
  "3.0": "systemerror",
  "3.1": "systemfull",
  "3.2": "notaccept",
  "3.3": "systemerror",
  "3.4": "mesgtoobig",
  "3.5": "systemerror",
  "4.0": "networkerror",
  "4.1": "expired",
  "4.2": "networkerror",
  "4.3": "systemerror",
  "4.4": "hostunknown",
  "4.5": "toomanyconn",
  "4.6": "networkerror",
  "4.7": "expired",
  "5.3": "toomanyconn",
  "5.4": "systemerror",
  "5.5": "systemerror",
  "6.0": "contenterror",
  "6.1": "contenterror",
  "6.2": "contenterror",
  "6.3": "contenterror",
  "6.5": "contenterror",
  "7.0": "securityerror",
  "7.1": "blocked",
  "7.2": "blocked",
  "7.3": "securityerror",
  "7.4": "securityerror",
  "7.5": "securityerror",
  "7.6": "securityerror",
  "7.7": "securityerror",
  "7.8": "securityerror",
  "7.9": "securityerror",
  "7.13": "suspend",
  "7.17": "hasmoved",
  "7.18": "hasmoved",
  "7.20": "securityerror",
  "7.21": "securityerror",
  "7.22": "securityerror",
  "7.23": "securityerror",
  "7.24": "securityerror",
  "7.25": "blocked",
  "7.26": "securityerror",
  "7.27": "rejected",
};

/** Status detail codes precise enough to outrank the words (X.2.2 is a full mailbox even if it says "rejected"). */
const DECISIVE = new Set([
  "1.2",
  "1.6",
  "1.7",
  "1.8",
  "2.2",
  "2.3",
  "3.4",
  "4.4",
  "4.7",
  "7.13",
  "7.17",
  "7.18",
]);

/**
 * Phrases per reason, lowercased, tried in this order: the more specific causes first, so that
 * "550 5.1.1 mailbox full" is a full mailbox and "blocked: user unknown" an unknown user.
 */
const PHRASES: ReadonlyArray<readonly [BounceReason, readonly string[]]> = [
  [
    "mailboxfull",
    [
      "mailbox full",
      "mailbox is full",
      "mailbox has exceeded",
      "mailbox exceeded",
      "mailbox size limit",
      "mailbox over quota",
      "mailbox is over quota",
      "mailfolder is full",
      "account is full",
      "account is over quota",
      "quota exceeded",
      "over quota",
      "overquota",
      "over the quota",
      "exceeded storage",
      "exceeds quota",
      "exceed the quota",
      "exceeded its quota",
      "quota full",
      "disk quota",
      "full mailbox",
      "storage quota",
      "too much mail data",
      "not enough storage space",
      "insufficient storage in mailbox",
      "user has exceeded",
      "user is over",
      "boite du destinataire pleine",
      "recipient's mailbox is full",
      "message would exceed quota",
      "maildir over quota",
      "mailbox reached",
    ],
  ],
  [
    "mesgtoobig",
    [
      "message too large",
      "message too big",
      "message is too large",
      "message is too big",
      "message size exceeds",
      "message size limit",
      "message length exceeds",
      "message file too big",
      "exceeds size limit",
      "exceeds the size limit",
      "exceeded the size limit",
      "size exceeds the maximum",
      "larger than the maximum",
      "too large for this",
      "mail size limit",
      "exceeds maximum message size",
      "exceeds the maximum allowed message size",
    ],
  ],
  ["exceedlimit", ["message header size exceeds", "message header exceeds", "too many hops"]],
  [
    "suspend",
    [
      "account disabled",
      "account is disabled",
      "account has been disabled",
      "account is suspended",
      "account has been suspended",
      "account suspended",
      "account is inactive",
      "account inactive",
      "account expired",
      "mailbox disabled",
      "mailbox is disabled",
      "mailbox has been disabled",
      "mailbox is inactive",
      "is disabled",
      "has been suspended",
      "recipient suspended",
      "user suspended",
      "boite du destinataire archivee",
      "currently suspended",
      "not an active address",
      "is not active",
    ],
  ],
  ["hasmoved", [" has been moved to ", "mailbox has moved", "address has changed", "has moved to "]],
  [
    "norelaying",
    [
      "relay access denied",
      "relaying denied",
      "relaying not allowed",
      "relaying not permitted",
      "relay not permitted",
      "relay denied",
      "we do not relay",
      "unable to relay",
      "not permitted to relay",
      "no relaying",
      "relaying mail to",
      "relay prohibited",
      "not allowed to relay",
      "isn't in my list of allowed rcpthosts",
    ],
  ],
  [
    "hostunknown",
    [
      "host unknown",
      "unknown host",
      "host not found",
      "host or domain name not found",
      "domain not found",
      "domain does not exist",
      "domain name not found",
      "no such domain",
      "unknown domain",
      "unrouteable address",
      "unroutable address",
      "unrouteable mail domain",
      "name or service not known",
      "all relevant mx records point to non-existent hosts",
      "no mx record",
      "nxdomain",
      "domain is not valid",
      "invalid domain",
      "unknown mail domain",
      "domain must exist",
      "recipient domain must exist",
      "domain isn't in my list",
      "illegal host/domain",
      "no route to domain",
      "domain may not exist",
      "domain doesnt exist",
      "domain doesn't exist",
      "domain is not reachable",
      "couldn't find a mail exchanger",
      "could not find a mail exchanger",
      "couldn't find any host named",
      "no mail exchanger",
    ],
  ],
  [
    "userunknown",
    [
      "user unknown",
      "unknown user",
      "no such user",
      "no such mailbox",
      "no such recipient",
      "no such address",
      "no such person",
      "unknown recipient",
      "recipient unknown",
      "unknown mailbox",
      "unknown address",
      "address unknown",
      "unknown local part",
      "unknown local-part",
      "unknown e-mail address",
      "unknown email address",
      "invalid recipient",
      "invalid mailbox",
      "invalid address",
      "invalid user",
      "bad recipient",
      "bad destination mailbox",
      "recipient not found",
      "recipient does not exist",
      "recipient not exist",
      "recipient is not local",
      "recipient address rejected: user",
      "recipient address rejected: unknown",
      "recipient address rejected: invalid",
      "recipient address rejected: access denied",
      "mailbox not found",
      "mailbox does not exist",
      "mailbox not present",
      "mailbox invalid",
      "mailbox unavailable",
      "mailbox is unavailable",
      "mailbox not available",
      "no mailbox",
      "user not found",
      "user not known",
      "user not exist",
      "user does not exist",
      "user doesn't exist",
      "user not active",
      "address does not exist",
      "address not present in directory",
      "address not found",
      "address invalid",
      "does not exist",
      "doesn't exist",
      "not a valid mailbox",
      "not a valid recipient",
      "not a valid user",
      "not a known user",
      "not listed in",
      "no account by that name",
      "there is no one at this address",
      "this address no longer accepts mail",
      "no longer valid",
      "is not a valid",
      "destination addresses were unknown",
      "destination server rejected recipients",
      "requested action not taken: mailbox unavailable",
      "sorry, no mailbox here by that name",
      "badrcptto",
      "validrcptto",
      "account that you tried to reach does not exist",
      "the email account that you tried to reach is disabled",
      "utilisateur inconnu",
      "no existe",
      "nessun utente",
      "unknown or illegal alias",
      "not our customer",
      "addressee unknown",
      "name not recognized",
      "not a local address",
      "can't accept user",
      "user missing home directory",
      "vdeliver: invalid or unknown virtual user",
      "resolver.adr.recipientnotfound",
      "resolver.adr.recipient notfound",
      "recipient address rejected",
      "address rejected",
      "no valid recipients",
      "invalid final delivery userid",
      "this user doesn't have a",
      "recipient name is not recognized",
      "name is not recognized",
    ],
  ],
  [
    "virusdetected",
    ["virus", "infected", "malware", "malicious content", "banned attachment", "dangerous content"],
  ],
  [
    "spamdetected",
    [
      "spam detected",
      "spam message",
      "as spam",
      "is spam",
      "be spam",
      "spam content",
      "likely spam",
      "spam score",
      "spam filter",
      "spam policy",
      "spam rejected",
      "spam-like",
      "junk mail",
      "unsolicited",
      "bulk mail",
      "message content rejected",
      "content filter",
      "rejected by content",
      "looks like spam",
      "message filtered",
      "considered as spam",
      "high probability of being spam",
      "bulk email",
    ],
  ],
  [
    "filtered",
    [
      "domain filter",
      "user refuses",
      "refused by recipient",
      "recipient refuses",
      "recipient rejects",
      "message rejected by recipient",
      "not accepting mail from you",
      "does not accept mail from",
      "rejected by the recipient",
      "because the recipient is not accepting mail",
      "blocked by recipient",
      "filtered",
      "this account is protected",
      "mail refused",
      "delivery not authorized",
    ],
  ],
  [
    "rejected",
    [
      "sender rejected",
      "sender reject",
      "sender address rejected",
      "sender verify failed",
      "sender verification",
      "sender denied",
      "invalid sender",
      "bad sender",
      "sender is not allowed",
      "sender not allowed",
      "domain of sender",
      "sender domain",
      "mail from",
      "envelope sender",
      "return path",
      "from address",
      "sender address",
      "your address",
      "rejected by",
      "message rejected",
      "refused",
      "not accepted",
      "you are not allowed",
      "denied",
    ],
  ],
  [
    "blocked",
    [
      "blocked",
      "blacklist",
      "black list",
      "blocklist",
      "block list",
      "dnsbl",
      "rbl",
      "spamhaus",
      "spamcop",
      "sorbs",
      "barracuda",
      "client host",
      "your ip",
      "ip address",
      "reverse dns",
      "reverse lookup",
      "ptr record",
      "rdns",
      "banned",
      "reputation",
      "listed at",
      "listed in",
      "not allowed to send",
      "access denied",
      "connection refused by",
      "has been temporarily rate limited",
    ],
  ],
  [
    "policyviolation",
    [
      "policy",
      "prohibited",
      "not permitted",
      "violat",
      "attachment",
      "restricted",
      "not authorized",
      "unauthorized",
      "authorization",
    ],
  ],
  [
    "securityerror",
    [
      "authentication",
      "spf",
      "dkim",
      "dmarc",
      "starttls",
      "tls required",
      "encryption required",
      "certificate",
      "must be secured",
      "not secure",
    ],
  ],
  [
    "toomanyconn",
    [
      "too many connections",
      "too many concurrent",
      "too many recipients",
      "too many messages",
      "too many simultaneous",
      "connection limit",
      "rate limit",
      "throttl",
      "exceeded the rate",
    ],
  ],
  [
    "expired",
    [
      "delivery time expired",
      "message expired",
      "delivery expired",
      "retry timeout exceeded",
      "retry time",
      "cannot send message for",
      "could not be delivered for",
      "was not delivered within",
      "has not been delivered",
      "giving up",
      "gave up",
      "queue too long",
      "too long in queue",
      "message timed out",
      "timeout waiting",
      "expired",
      "unable to deliver the message in",
      "maximum time",
    ],
  ],
  [
    "networkerror",
    [
      "connection timed out",
      "timed out",
      "timeout",
      "connection refused",
      "connection reset",
      "lost connection",
      "could not connect",
      "couldn't connect",
      "unable to connect",
      "network is unreachable",
      "no route to host",
      "mail loop",
      "loops back",
      "routing loop",
      "loop detected",
      "hop count",
      "dns",
      "temporary lookup failure",
      "name server",
      "unable to resolve",
    ],
  ],
  [
    "systemfull",
    [
      "mail system full",
      "disk full",
      "system storage",
      "insufficient system storage",
      "out of disk",
      "file system full",
      "no space left",
      "disk is full",
      "insufficient disk space",
      "space shortage",
    ],
  ],
  [
    "notaccept",
    [
      "does not accept mail",
      "not accepting mail",
      "not accept any mail",
      "null mx",
      "no mail service",
      "accepts no mail",
      "does not receive mail",
      "no smtp service",
    ],
  ],
  [
    "mailererror",
    [
      "mailer error",
      "command failed",
      "child status",
      "exit code",
      "pipe to",
      "procmail",
      "command died",
      "x-unix",
      "local delivery failed",
      "unknown mailer error",
    ],
  ],
  [
    "contenterror",
    ["content", "mime", "charset", "8-bit", "8bit", "malformed", "header error", "invalid header"],
  ],
  ["syntaxerror", ["syntax error", "command unrecognized", "command not recognized", "unrecognized command"]],
  [
    "systemerror",
    [
      "system error",
      "internal error",
      "server error",
      "local error",
      "configuration error",
      "misconfigured",
      "service unavailable",
      "temporary failure",
      "temporarily unavailable",
      "i/o error",
      "too many errors",
      "remote protocol error",
    ],
  ],
];

export interface ReasonInput {
  /** the server's words and the notice's, any length (capped here) */
  text?: string | undefined;
  /** RFC 3463 status, when known */
  status?: string | undefined;
}

/** The detail part of a status ("5.1.1" -> "1.1"), or undefined. */
function statusDetail(status: string | undefined): string | undefined {
  if (status === undefined) return undefined;
  const dot = status.indexOf(".");
  return dot < 0 ? undefined : status.slice(dot + 1);
}

/** The reason the words give, or undefined. */
export function reasonFromText(text: string | undefined): BounceReason | undefined {
  if (text === undefined || text === "") return undefined;
  const t = (text.length > MAX_REASON_TEXT ? text.slice(0, MAX_REASON_TEXT) : text)
    .toLowerCase()
    .replace(/\s+/g, " ");
  for (const [reason, phrases] of PHRASES) {
    for (const p of phrases) if (t.includes(p)) return reason;
  }
  return undefined;
}

/** The reason a status code gives on its own, or undefined (X.0.0 and unknown details). */
export function reasonFromStatus(status: string | undefined): BounceReason | undefined {
  const d = statusDetail(status);
  return d === undefined ? undefined : STATUS_REASON[d];
}

export type SmtpCommand = "RCPT" | "DATA" | "MAIL" | undefined;

/** The SMTP command a refusal answered, when the text says ("in reply to RCPT TO command", "after end of data"). */
export function smtpCommand(text: string | undefined): SmtpCommand {
  if (text === undefined) return undefined;
  const t = (text.length > MAX_REASON_TEXT ? text.slice(0, MAX_REASON_TEXT) : text)
    .toLowerCase()
    .replace(/\s+/g, " ");
  if (
    t.includes("rcpt to") ||
    t.includes("after rcpt") ||
    t.includes(">>> rcpt") ||
    t.includes("rcpt command") ||
    t.includes("rcpt_to")
  )
    return "RCPT";
  if (
    t.includes("end of data") ||
    t.includes("after data") ||
    t.includes("data command") ||
    t.includes(">>> data")
  )
    return "DATA";
  if (t.includes("mail from") || t.includes("after mail")) return "MAIL";
  return undefined;
}

/** Reasons that, when the words say them, outrank a 5.1.1 status (a full mailbox answered with 5.1.1). */
const OVER_USERUNKNOWN: ReadonlySet<BounceReason> = new Set([
  "mailboxfull",
  "norelaying",
  "hasmoved",
  "suspend",
  "blocked",
  "rejected",
  "notaccept",
]);

/**
 * Why the delivery failed: a decisive status, else the words, else the status, else "undefined".
 * As in Sisimai, "user unknown" is an unknown user only when it answered RCPT or carries an address
 * status (X.1.x): said after DATA, or under a status of another kind, it is a content filter
 * pretending ("filtered"). A temporary (4.x.x) failure is never a dead domain: "host not found, try
 * again" is a network error.
 */
export function classifyReason(input: ReasonInput & { command?: SmtpCommand }): BounceReason {
  const detail = statusDetail(input.status);
  const temporary =
    input.status?.startsWith("4") === true ||
    (input.status === undefined && (input.text ?? "").toLowerCase().includes("try again"));
  const byStatus = reasonFromStatus(input.status);
  const soften = (r: BounceReason): BounceReason =>
    temporary && (r === "hostunknown" || r === "hasmoved") ? "networkerror" : r;
  if (detail !== undefined && DECISIVE.has(detail) && byStatus !== undefined) return soften(byStatus);
  const byText = reasonFromText(input.text);
  const command = input.command ?? smtpCommand(input.text);
  // a refusal of MAIL FROM is about us, the sender, whatever status it carries
  if (command === "MAIL") return "rejected";
  if (byStatus === "userunknown") {
    return byText !== undefined && OVER_USERUNKNOWN.has(byText) ? byText : "userunknown";
  }
  if (byText === "userunknown") {
    if (command === "RCPT" || detail?.startsWith("1.") === true || detail === "2.1") return "userunknown";
    // after DATA the address was accepted: the refusal is about the message, whatever it says
    // a DSN that only says 5.0.0 does not vouch for the address either (Sisimai reads it the same way)
    if (command === "DATA" || (detail !== undefined && /^(?:0\.0|2\.|7\.)/.test(detail))) return "filtered";
    return "userunknown";
  }
  return soften(byText ?? byStatus ?? "undefined");
}

/** Hard (the address is gone) or soft (it may pass another day), as Sisimai and Mailman tell them apart. */
export function isHardReason(reason: BounceReason, status?: string, text?: string): boolean {
  if (HARD.has(reason)) return true;
  if (reason === "notaccept") {
    // a null MX or a host that refuses all mail is permanent unless the server says to retry (4xx)
    const cls = status?.[0] ?? /(?:^|\D)([45])\d\d(?:\D|$)/.exec(text ?? "")?.[1];
    return cls !== "4";
  }
  return false;
}
