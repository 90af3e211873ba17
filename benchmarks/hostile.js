// Hostile input: CPU time per MiB of each hostile message (test/fixtures/hostile/) on each path a
// stranger's mail takes, in process, with the same functions the runners call:
//   post     inject's check, then the incoming runner's: loop/size/poster checks, Subject and
//            Message-ID, the list headers (decorate)
//   bounce   the bounce detector (what `qrunner bounce scan` and the bounce runner run)
//   command  the command runner's robot check and request parsing (mailparser on the first 256 KiB)
//   archive  the mboxrd entry the archive runner appends
// The figure per path is the worst message's: its CPU time (user + system, best of --rounds) divided by
// its size in MiB (--quick: best of 2). Target: at most 200 ms/MiB (issue 15), i.e. linear time with a small constant.
// Messages inject refuses (over a header limit, NUL in the header) are measured on inject's check only.
//
//   node benchmarks/hostile.js [--quick] [--json] [--rounds=3] [--only-message=NAME] [--paths=post,bounce,...]
import { fmt, emit, isMain, log, num, arg, table, target, targetsTable } from "./lib.js";
import { hostileMessages } from "../test/fixtures/hostile/generate.js";

const TARGET_MS_PER_MIB = 200;
const MIB = 1024 * 1024;

async function paths() {
  const { checkMessage } = await import("../dist/lists/message-check.js");
  const { screenPost, noticeDecision } = await import("../dist/lists/checks.js");
  const { decorate, SUBJECT_SCAN_CHARS } = await import("../dist/lists/headers.js");
  const { decodeHeaderText } = await import("../dist/lists/header-text.js");
  const { getHeader, messageId } = await import("../dist/lists/message.js");
  const { scanBounce } = await import("../dist/lists/bounces/detect.js");
  const { parseRequest } = await import("../dist/lists/request.js");
  const { mboxrdEntry } = await import("../dist/lists/mbox.js");
  const { listSchema } = await import("../dist/lists/schema.js");
  const parsed = listSchema.parse({
    address: "dev@example.org",
    owners: ["owner@example.org"],
    members: ["m0@example.net", "m1@example.net"],
    subject_prefix: "[dev] ",
    archive: true,
  });
  const list = {
    ...parsed,
    name: "dev",
    domain: "example.org",
    file: "/dev/null",
    allMembers: parsed.members,
  };
  const members = new Set(list.members);
  const sender = "poster@example.net";
  return {
    post: (raw) => {
      if (!checkMessage(raw).ok) return;
      screenPost(raw, sender, list, (a) => members.has(a));
      const subject = getHeader(raw, "subject");
      if (subject !== undefined) decodeHeaderText(subject.slice(0, SUBJECT_SCAN_CHARS)); // as incoming does
      messageId(raw);
      decorate(raw, list);
    },
    bounce: (raw) => scanBounce(raw),
    command: async (raw) => {
      noticeDecision(sender, raw);
      await parseRequest(raw, "request");
      messageId(raw);
    },
    archive: (raw) => void mboxrdEntry(raw, sender, new Date(0)),
  };
}

/** CPU milliseconds (user + system) of one call. */
async function cpuMs(fn, raw) {
  const before = process.cpuUsage();
  await fn(raw);
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1000;
}

export async function main() {
  const rounds = num("rounds", 3, 2);
  const only = arg("only-message", "");
  const t0 = Date.now();
  const messages = hostileMessages().filter((m) => only === "" || m.name === only);
  log(`hostile: ${messages.length} messages generated in ${Date.now() - t0} ms; ${rounds} round(s)`);
  const wanted = arg("paths", "post,bounce,command,archive").split(",");
  const run = Object.fromEntries(Object.entries(await paths()).filter(([name]) => wanted.includes(name)));
  // warm up every path (module loading, JIT) on an ordinary message first
  const plain = Buffer.from(
    "From: a@example.net\r\nTo: dev@example.org\r\nSubject: help\r\nMessage-ID: <w@x>\r\n\r\nhelp\r\n",
  );
  for (const fn of Object.values(run)) for (let i = 0; i < 20; i++) await fn(plain);

  const rows = [];
  const worst = {};
  for (const m of messages) {
    const mib = m.raw.length / MIB;
    const row = [m.name, fmt(m.raw.length / 1024, 0)];
    for (const [name, fn] of Object.entries(run)) {
      if (m.refused && name !== "post") {
        row.push("refused");
        continue;
      }
      let best = Infinity;
      for (let r = 0; r < rounds; r++) best = Math.min(best, await cpuMs(fn, m.raw));
      const perMib = best / mib;
      row.push(`${fmt(best, 1)} (${fmt(perMib, 0)})`);
      if (!(name in worst) || perMib > worst[name].perMib)
        worst[name] = { message: m.name, ms: best, perMib };
    }
    rows.push(row);
  }
  table(
    `hostile: CPU ms per message (ms/MiB), best of ${rounds}`,
    ["message", "KiB", ...Object.keys(run)],
    rows,
  );
  const targets = Object.entries(worst).map(([path, w]) =>
    target(
      `${path}: worst hostile message (${w.message}) CPU per MiB`,
      w.perMib,
      "<=",
      TARGET_MS_PER_MIB,
      " ms/MiB",
    ),
  );
  targetsTable("hostile: targets", targets);
  emit("hostile", { rounds, node: process.version, worst, targets });
}

if (isMain(import.meta.url)) await main();
