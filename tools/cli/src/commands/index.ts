import type { Command } from 'commander';
import { register as up } from './up.js';
import { register as fl } from './fl.js';
import { register as dp } from './dp.js';
import { register as model } from './model.js';
import { register as secagg } from './secagg.js';
import { register as device } from './device.js';
import { register as rounds } from './rounds.js';
import { register as demo } from './demo.js';

/** Each subcommand group registers itself on the root program. */
export const commandGroups: Array<(program: Command) => void> = [
  up,
  demo,
  fl,
  dp,
  model,
  secagg,
  device,
  rounds,
];
