/** Which handler each runner uses. Loaded lazily: a worker loads only its own runner's code. */
import type { RunnerName } from "../config/schema.js";
import type { Handler } from "./base.js";
import type { RunnerContext } from "./context.js";

export async function createHandler(runner: RunnerName, ctx: RunnerContext): Promise<Handler> {
  switch (runner) {
    case "incoming":
      return new (await import("./incoming.js")).IncomingRunner(ctx);
    case "outgoing":
      return new (await import("./outgoing.js")).OutgoingRunner(ctx);
    case "backoff":
      return new (await import("./backoff.js")).BackoffRunner(ctx);
    case "bounce":
      return new (await import("./bounce.js")).BounceRunner(ctx);
    case "command":
      return new (await import("./command.js")).CommandRunner(ctx);
    case "archive":
      return new (await import("./archive.js")).ArchiveRunner(ctx);
  }
}
