import type { Command } from "commander";

/** Placeholder: this command is being written. */
export function register(_program: Command): void {}
