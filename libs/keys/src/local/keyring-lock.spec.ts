import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '@edgefl/testing';
import { KeyError } from '../errors.js';
import { withKeyringLock } from './keyring-file.js';
import { LocalKeyProvider } from './local-key-provider.js';

/** A pid no process has (Linux caps pids far below this), so a lock holding it is stale. */
const DEAD_PID = '999999999';

describe('keyring lock take-over', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let path: string;
  beforeEach(async () => {
    dir = await tempDir('edgefl-keyring-lock-');
    path = join(dir.path, 'keyring.json');
  });
  afterEach(() => dir.remove());

  it('lets exactly one contender take over a stale lock and never removes the new holder’s lock', async () => {
    await writeFile(`${path}.lock`, DEAD_PID, { mode: 0o600 });
    const contenders = 8;

    // The interleaving that loses keys, forced with the lock's hooks instead of timing: one contender takes over
    // the stale lock and enters; only then do the others act on their own (now outdated) judgement that the lock
    // is stale. The first holder stays inside until every other contender has either gone back to waiting or got
    // in too — so a second holder, if the lock lets one in, is inside at the same time and is counted.
    let firstJudgementTaken = false;
    let markEntered!: () => void;
    const someoneEntered = new Promise<void>((resolve) => (markEntered = resolve));
    let entries = 0;
    const settled = new Set<number>(); // contenders that waited or entered after the first entry
    let releaseFirst!: () => void;
    const othersSettled = new Promise<void>((resolve) => (releaseFirst = resolve));
    const settle = (i: number) => {
      if (entries === 0) return;
      settled.add(i);
      if (settled.size >= contenders - 1) releaseFirst();
    };

    let inside = 0;
    let mostInside = 0;
    const ran: number[] = [];
    await Promise.all(
      Array.from({ length: contenders }, (_, i) =>
        withKeyringLock(
          path,
          async () => {
            inside++;
            mostInside = Math.max(mostInside, inside);
            const first = entries === 0;
            if (!first) settle(i);
            entries++;
            if (first) {
              markEntered();
              await othersSettled;
            }
            ran.push(i);
            inside--;
          },
          {
            hooks: {
              staleJudged: async () => {
                if (!firstJudgementTaken) {
                  firstJudgementTaken = true;
                  return;
                }
                await someoneEntered;
              },
              waiting: () => settle(i),
            },
          },
        ),
      ),
    );

    expect(mostInside).toBe(1);
    expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: contenders }, (_, i) => i));
    expect(await readdir(dir.path)).toEqual([]); // no lock, take-over or temp file left behind
  });

  it('providers racing to take over one stale lock each keep their key', async () => {
    await (await LocalKeyProvider.open({ path })).close();
    await writeFile(`${path}.lock`, DEAD_PID, { mode: 0o600 });
    const providers = await Promise.all(Array.from({ length: 12 }, () => LocalKeyProvider.open({ path })));
    await Promise.all(providers.map((keys, i) => keys.createSigningKey(`racer-${i}`)));

    const reader = await LocalKeyProvider.open({ path });
    for (let i = 0; i < providers.length; i++) {
      expect((await reader.publicKeys(`racer-${i}`)).length).toBe(1);
    }
    expect(await readdir(dir.path)).toEqual(['keyring.json']);
    await Promise.all([...providers, reader].map((keys) => keys.close()));
  });

  it('never removes the lock of a live process, nor a take-over in progress', async () => {
    const refused = async () => {
      try {
        await withKeyringLock(path, async () => 'entered', { timeoutMs: 30 });
        return 'entered';
      } catch (error) {
        return error instanceof KeyError ? error.code : 'not a KeyError';
      }
    };
    // A live process (our parent) holds the lock.
    await writeFile(`${path}.lock`, String(process.ppid), { mode: 0o600 });
    expect(await refused()).toBe('BACKEND_UNAVAILABLE');
    expect(await readFile(`${path}.lock`, 'utf8')).toBe(String(process.ppid));

    // A dead owner, but another contender's take-over is under way (a fresh take-over file): left to it.
    await writeFile(`${path}.lock`, DEAD_PID, { mode: 0o600 });
    await writeFile(`${path}.lock.takeover`, String(process.ppid), { mode: 0o600 });
    expect(await refused()).toBe('BACKEND_UNAVAILABLE');
    expect((await readdir(dir.path)).sort()).toEqual(['keyring.json.lock', 'keyring.json.lock.takeover']);
  });

  it('clears a take-over abandoned by a dead process (by its age) and then takes over the stale lock', async () => {
    await writeFile(`${path}.lock`, DEAD_PID, { mode: 0o600 });
    await writeFile(`${path}.lock.takeover`, DEAD_PID, { mode: 0o600 });
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock.takeover`, longAgo, longAgo);
    expect(await withKeyringLock(path, async () => 'entered')).toBe('entered');
    expect(await readdir(dir.path)).toEqual([]);
  });
});
