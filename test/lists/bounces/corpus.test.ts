/**
 * The detector against real bounces: ../shared/bounces (337 messages from dozens of MTAs, half of each
 * family of Sisimai's public collection, BSD-2, see its LICENSE) and expected.json, what a mature
 * parser reports for each. Prints recall, precision, hard/soft and reason agreement per family, with
 * every miss, so a regression shows where it is. The collection is not copied into the repository.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatScore, scoreCorpus } from "./corpus-measure.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const SHARED = path.resolve(ROOT, "../shared/bounces");
const REAL = path.join(SHARED, "real");
const EXPECTED = path.join(SHARED, "expected.json");
const present = existsSync(REAL) && existsSync(EXPECTED);

if (!present) {
  process.stderr.write(
    `bounce corpus test skipped: ${REAL} or ${EXPECTED} is absent (CI checks it out beside the repository)\n`,
  );
}

describe.skipIf(!present)("bounce detection over the real-bounce corpus", () => {
  it("finds at least 98% of the bounced addresses, with at least 99% precision, 95% hard/soft and 70% reason agreement", async () => {
    const score = await scoreCorpus(REAL, EXPECTED);
    process.stdout.write(formatScore(score) + "\n");
    const t = score.total;
    expect(t.expected).toBeGreaterThan(300);
    expect(t.found / t.expected).toBeGreaterThanOrEqual(0.98);
    // precision over the files the reference answers: on 16 real bounces (DragonFly Mail Agent,
    // Mimecast) the reference names nobody, and what we find there (the failed recipient each one
    // names) is listed, not counted
    expect(t.correct / t.reportedAnswered).toBeGreaterThanOrEqual(0.99);
    expect(t.correct / t.reported).toBeGreaterThanOrEqual(0.94);
    // hard/soft as the reference decides it (from the reason, as Sisimai does)
    expect(t.kindAgree / t.found).toBeGreaterThanOrEqual(0.95);
    expect(t.reasonAgree / t.found).toBeGreaterThanOrEqual(0.7);
    // complaints and not-bounces are told apart from bounces
    expect(score.complaints.found).toBe(score.complaints.expected);
    expect(score.notBounces.found).toBe(score.notBounces.expected);
  });
});
