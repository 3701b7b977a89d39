import type { Command } from 'commander';

/** Each subcommand group registers itself on the root program. */
export const commandGroups: Array<(program: Command) => void> = [];
