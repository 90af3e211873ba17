import { describe, expect, it } from "vitest";
import { MAX_REQUEST_BYTES, parseCommandText, parseRequest } from "../../src/lists/request.js";

const mail = (subject: string | null, body: string, extra = ""): Buffer =>
  Buffer.from(
    `From: alice@example.net\r\nTo: dev-request@example.org\r\n${subject === null ? "" : `Subject: ${subject}\r\n`}` +
      `${extra}Message-ID: <r1@example.net>\r\n\r\n${body.replace(/\n/g, "\r\n")}`,
    "utf8",
  );
const verbs = (r: { commands: { verb: string; args: string[] }[] }): string[] =>
  r.commands.map((c) => [c.verb, ...c.args].join(" "));

describe("parseRequest (-request)", () => {
  it("reads the subject, then the body, with synonyms and arguments", async () => {
    const r = await parseRequest(
      mail("subscribe", "help\n  echo hello  world \nUNSUBSCRIBE\nconfirm abc123\n"),
      "request",
    );
    expect(verbs(r)).toEqual(["join", "help", "echo hello world", "leave", "confirm abc123"]);
    expect(r.commands[2]?.line).toBe("echo hello  world");
    expect(r.ignored).toBe(0);
  });

  it("strips Re:/Fwd: from the subject (a confirmation reply)", async () => {
    const r = await parseRequest(mail("Re: RE: Fwd: confirm AbCdEf123", ""), "request");
    expect(verbs(r)).toEqual(["confirm AbCdEf123"]);
    const enc = await parseRequest(mail("=?UTF-8?Q?Re:_confirm_tok=5Fen?=", ""), "request");
    expect(verbs(enc)).toEqual(["confirm tok_en"]);
  });

  it("counts a prose subject as ignored, not as an unknown command", async () => {
    const r = await parseRequest(mail("please remove me", "leave\n"), "request");
    expect(verbs(r)).toEqual(["leave"]);
    expect(r.ignored).toBe(1);
  });

  it("stops at end or a signature and skips quoted lines", async () => {
    const r = await parseRequest(mail(null, "> join\njoin\n\nend\nleave\nhelp\n"), "request");
    expect(verbs(r)).toEqual(["join"]);
    expect(r.ignored).toBe(2);
    const sig = await parseRequest(mail(null, "help\n-- \nAlice\nhttps://alice.example.net\n"), "request");
    expect(verbs(sig)).toEqual(["help"]);
    expect(sig.ignored).toBe(2);
  });

  it("marks unknown lines and stops after the command limit", async () => {
    const body = Array.from({ length: 15 }, (_, i) => `frob ${i}`).join("\n");
    const r = await parseRequest(mail(null, body), "request");
    expect(r.commands).toHaveLength(10);
    expect(r.commands.every((c) => c.verb === "unknown")).toBe(true);
    expect(r.ignored).toBe(5);
    expect((await parseRequest(mail(null, body), "request", { maxCommands: 3 })).commands).toHaveLength(3);
  });

  it("reads the text part of a multipart message, not the attachment", async () => {
    const raw = mail(
      null,
      [
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "join",
        "--b1",
        "Content-Type: text/plain; name=notes.txt",
        "Content-Disposition: attachment; filename=notes.txt",
        "",
        "leave",
        "--b1--",
        "",
      ].join("\n"),
      'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n',
    );
    expect(verbs(await parseRequest(raw, "request"))).toEqual(["join"]);
  });

  it("falls back to the HTML of an HTML-only message", async () => {
    const raw = mail(
      null,
      "<html><body><p>help</p></body></html>\n",
      "MIME-Version: 1.0\r\nContent-Type: text/html\r\n",
    );
    expect(verbs(await parseRequest(raw, "request"))).toEqual(["help"]);
  });

  it("parses at most MAX_REQUEST_BYTES", async () => {
    const raw = Buffer.concat([mail(null, "help\n"), Buffer.alloc(MAX_REQUEST_BYTES * 2, "x")]);
    const r = await parseRequest(raw, "request");
    expect(r.commands[0]?.verb).toBe("help");
  });
});

describe("parseRequest (-join / -leave)", () => {
  it("the address is the command", async () => {
    expect(verbs(await parseRequest(mail("hi", "leave\nplease add me\n"), "join"))).toEqual(["join"]);
    expect(verbs(await parseRequest(mail(null, ""), "leave"))).toEqual(["leave"]);
  });

  it("a confirmation sent to -join confirms instead of starting over", async () => {
    expect(verbs(await parseRequest(mail("Re: confirm tok123", ""), "join"))).toEqual(["confirm tok123"]);
  });
});

describe("parseCommandText", () => {
  it("treats a bare -- as a signature too", () => {
    expect(parseCommandText(undefined, "help\n--\njoin").commands.map((c) => c.verb)).toEqual(["help"]);
  });
});
