import type { Command } from 'commander';
import { register as up } from './up.js';

/** Each subcommand group registers itself on the root program. */
export const commandGroups: Array<(program: Command) => void> = [up];
