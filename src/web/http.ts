/**
 * Request and response plumbing of the console: the security headers every response carries, bounded
 * form bodies, the client address for the rate limit, and the small set of responses pages need.
 */
import type http from "node:http";
import { isLoopback } from "../intake/listen.js";
import type { Html } from "./escape.js";

/**
 * No inline script or style at all: the console's one script and one style sheet are served from
 * this origin (/console.js, /console.css). No framing, no form posting elsewhere, no referrer.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on our own form posts
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
  "cross-origin-opener-policy": "same-origin",
};

/** A form body larger than this is refused (413): the console's forms are a few fields. */
export const MAX_FORM_BYTES = 16 * 1024;

export class BodyTooLargeError extends Error {}

/** The urlencoded form of a POST; rejects with BodyTooLargeError past MAX_FORM_BYTES. */
export function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_FORM_BYTES) {
        reject(new BodyTooLargeError(`form over ${MAX_FORM_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(new URLSearchParams(Buffer.concat(chunks).toString("utf8"))));
    req.on("error", reject);
  });
}

/**
 * The client's address: the peer, or, when the peer is on loopback (a reverse proxy on this host),
 * the last address of X-Forwarded-For that the proxy set (docs/web.md: `proxy_set_header
 * X-Forwarded-For $remote_addr`).
 */
export function clientAddress(req: http.IncomingMessage): string {
  const peer = req.socket.remoteAddress ?? "";
  const fwd = req.headers["x-forwarded-for"];
  if (isLoopback(peer) && typeof fwd === "string" && fwd.length > 0 && fwd.length <= 512) {
    const last = fwd.split(",").at(-1)?.trim();
    if (last) return last;
  }
  return peer;
}

export function send(
  res: http.ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": type,
    "content-length": String(Buffer.byteLength(body)),
    ...headers,
  });
  res.end(body);
}

export function sendHtml(
  res: http.ServerResponse,
  status: number,
  page: Html,
  headers: Record<string, string> = {},
): void {
  send(res, status, "text/html; charset=utf-8", page.text, headers);
}

/** 303 See Other: after a POST, the browser GETs the page again (no resubmission on reload). */
export function redirect(res: http.ServerResponse, to: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { ...SECURITY_HEADERS, location: to, "content-length": "0", ...headers });
  res.end();
}

export function sendText(res: http.ServerResponse, status: number, text: string): void {
  send(res, status, "text/plain; charset=utf-8", text + "\n");
}

/**
 * A POST a browser sent from another site: its Origin names another host than the request's Host.
 * (SameSite=Strict and the CSRF token guard the actions; this also guards the login form, which has
 * no session yet.) Requests without an Origin (older browsers, scripts) pass on to the token check.
 */
export function crossOrigin(req: http.IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}
