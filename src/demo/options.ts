/** The demo's command line. */
import path from "node:path";
import { parseArgs } from "node:util";
import { UsageError } from "../util/errors.js";

export const HELP = `Usage: npm run demo -- [--posts=N] [--members=M] [--inject=K] [--dir=DIR] [--timeout=S] [--clean]

Runs qrunner end to end on this machine: three loopback SMTP receivers (primary-1 weight 3,
primary-2 weight 1, a fallback), a demo site with one list of M members, the real master, N posts
(K of them through \`qrunner inject\`, the rest enqueued straight into incoming). primary-1 is taken
down mid-run and brought back. Ends with a summary; exits 0 only when nothing was lost.

  --posts=N     posts to send (default 3000)
  --members=M   list members (default 250)
  --inject=K    posts handed over through \`qrunner inject\` processes (default 20)
  --dir=DIR     write the site here (default: a new temp directory; printed)
  --timeout=S   give up after S seconds (default 180)
  --clean       remove the site directory at the end

Example:
  npm run demo -- --posts=500 --members=50   (a quick run)
`;

export interface Options {
  posts: number;
  members: number;
  /** posts handed over through `qrunner inject` */
  inject: number;
  dir?: string;
  timeoutMs: number;
  clean: boolean;
}

/** The options, or null when help was asked for; throws UsageError. */
export function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      posts: { type: "string" },
      members: { type: "string" },
      inject: { type: "string" },
      dir: { type: "string" },
      timeout: { type: "string" },
      clean: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return null;
  const int = (name: string, v: string | undefined, dflt: number, min: number, max: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new UsageError(`--${name} takes a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
    return n;
  };
  const posts = int("posts", values.posts, 3000, 1, 100_000);
  return {
    posts,
    members: int("members", values.members, 250, 1, 10_000),
    inject: Math.min(posts, int("inject", values.inject, 20, 0, 100_000)),
    timeoutMs: int("timeout", values.timeout, 180, 10, 3600) * 1000,
    clean: values.clean === true,
    ...(values.dir !== undefined ? { dir: path.resolve(values.dir) } : {}),
  };
}
