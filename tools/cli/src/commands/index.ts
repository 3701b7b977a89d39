import type { Command } from 'commander';
import { register as up } from './up.js';
import { register as fl } from './fl.js';
import { register as dp } from './dp.js';
import { register as model } from './model.js';
import { register as secagg } from './secagg.js';

/** Each subcommand group registers itself on the root program. */
export const commandGroups: Array<(program: Command) => void> = [up, fl, dp, model, secagg];
