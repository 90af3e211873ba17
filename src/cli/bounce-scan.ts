/**
 * `qrunner bounce scan FILE [--json]`: run the bounce detector over one message and show what it
 * finds (address, hard/soft kind, reason, status), the same answer the bounce runner acts on. Exit 0 when a bounce was recognized, 1 when not
 * (with the reason), 66 (EX_NOINPUT) when the file cannot be read.
 */
import type { Command } from "commander";
import { Exit, setExit, warn, withConfigOption } from "./context.js";
import { table } from "./table.js";
import { RAW_OPTION, terminalText } from "./terminal-text.js";
import type { BounceScan } from "../lists/bounces/detect.js";

/** sysexits(3) EX_NOINPUT: the input file did not exist or was not readable. */
const EX_NOINPUT = 66;

interface ScanOptions {
  json?: boolean;
  raw?: boolean;
}

export function register(program: Command): void {
  const bounce = withConfigOption(
    program.command("bounce").description("bounce detection tools"),
  ).addHelpText("after", "\nExample:\n  qrunner bounce scan /tmp/undelivered.eml");
  withConfigOption(
    bounce
      .command("scan")
      .description("show the addresses the bounce detector finds in one message, permanent and temporary")
      .argument("<file>", "the message (RFC 5322, as saved from a mailbox or a queue entry); - for stdin")
      .option("--json", "print one JSON object instead of a table")
      .option(...RAW_OPTION),
  )
    .addHelpText(
      "after",
      "\nExit status: 0 a bounce was recognized, 1 none was (the reason is printed), 66 the file cannot be read." +
        "\n\nExample:\n  qrunner bounce scan /tmp/undelivered.eml\n  qrunner bounce scan --json - < bounce.eml",
    )
    .action(async (file: string, opts: ScanOptions) => {
      const { MAX_SCAN_BYTES, scanBounce } = await import("../lists/bounces/detect.js");
      let raw: Buffer;
      try {
        raw = await readHead(file, MAX_SCAN_BYTES);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        warn(`cannot read ${file === "-" ? "stdin" : file}: ${e.message}`);
        setExit(EX_NOINPUT);
        return;
      }
      const result = await scanBounce(raw);
      // addresses and diagnostics come from the bounce: escaped on a terminal
      const out = terminalText(opts.raw);
      if (opts.json) {
        out.write(JSON.stringify(result, null, 2) + "\n");
      } else {
        process.stdout.write(formatScan(out.data(result)));
      }
      setExit(result.recognized ? Exit.OK : Exit.FAIL);
    });
}

/** Diagnostics longer than this are cut in the table (--json has them whole). */
const DIAGNOSTIC_WIDTH = 120;

/** The human form: the format, a count line, and one aligned row per address. */
export function formatScan(scan: BounceScan): string {
  let out = `format: ${scan.format}\n`;
  if (!scan.recognized) {
    out += `no bounce recognized: ${scan.reason ?? "no delivery-status part and no known text pattern"}\n`;
    if (scan.notBounce === "complaint" && scan.complaint !== undefined) {
      out += `complaint: ${scan.complaint.address ?? "-"} (${scan.complaint.feedbackType ?? "unknown type"})\n`;
    }
    return out;
  }
  out += `${scan.permanent.length} permanent, ${scan.temporary.length} temporary\n\n`;
  const rows = scan.details.map((d) => {
    const diag = d.diagnostic ?? "-";
    return [
      d.address,
      d.kind,
      d.reason ?? "-",
      d.status ?? "-",
      diag.length > DIAGNOSTIC_WIDTH ? diag.slice(0, DIAGNOSTIC_WIDTH - 1) + "…" : diag,
    ];
  });
  return out + table(["ADDRESS", "KIND", "REASON", "STATUS", "DIAGNOSTIC"], rows);
}

/**
 * The first `max` bytes of the file (or stdin): the detector looks at no more, and a multi-gigabyte
 * file must not be read whole to find that out.
 */
async function readHead(file: string, max: number): Promise<Buffer> {
  if (file === "-") {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of process.stdin) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      if (n < max) chunks.push(b.subarray(0, max - n));
      n += b.length;
    }
    return Buffer.concat(chunks);
  }
  const { open } = await import("node:fs/promises");
  const h = await open(file, "r");
  try {
    const buf = Buffer.alloc(max);
    let n = 0;
    while (n < max) {
      const { bytesRead } = await h.read(buf, n, max - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return buf.subarray(0, n);
  } finally {
    await h.close();
  }
}
