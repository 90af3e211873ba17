/**
 * The SMTP envelope as it goes on the wire, and the prepared mail object handed to nodemailer's
 * connection pool (see HostTransport.send): address checks and normalisation, 8BITMIME detection.
 */
import { isAscii } from "node:buffer";
import { createRequire } from "node:module";

/** An address we can put between angle brackets in MAIL FROM / RCPT TO. */
export const BAD_ADDRESS = /[\s<>]/;

/**
 * An address as it goes into MAIL FROM or RCPT TO: the local part exactly as given, the domain
 * lower-cased and, when it is not ASCII, in punycode (IDNA), as nodemailer would send it.
 */
export function wireAddress(address: string): string {
  const at = address.lastIndexOf("@");
  if (at < 0) return address;
  const domain = address.slice(at + 1).toLowerCase();
  return address.slice(0, at + 1) + (isAscii(Buffer.from(domain)) ? domain : punycodeDomain(domain));
}

function punycodeDomain(domain: string): string {
  const { toASCII } = createRequire(import.meta.url)("nodemailer/lib/punycode/index.js") as {
    toASCII(d: string): string;
  };
  try {
    return toASCII(domain);
  } catch {
    return domain; // not a valid IDN: sent as given, and the server judges it
  }
}

/** Any byte >= 0x80: the body needs BODY=8BITMIME where the server offers it. */
export function hasEightBit(raw: Buffer): boolean {
  return !isAscii(raw);
}
