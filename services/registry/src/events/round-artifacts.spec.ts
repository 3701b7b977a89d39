import { createServer, type Server } from 'node:http';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UnprocessableRecordError } from '@edgefl/bus';
import { sha256Hex } from '@edgefl/model';
import { freePort, tempDir } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryConfig } from '../config.js';
import { fetchRoundWeights, parseArtifactPrefix, type ArtifactPrefix } from './round-artifacts.js';

const weights = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 251));
const ref = (uri: string, bytes: Buffer = weights) => ({
  uri,
  sha256: sha256Hex(bytes),
  sizeBytes: bytes.byteLength,
});

async function refusal(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    expect(error).toBeInstanceOf(UnprocessableRecordError);
    return (error as UnprocessableRecordError).code;
  }
  throw new Error('expected a refusal');
}

describe('round-result weights by reference', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let allowed: string;
  let server: Server;
  let origin: string;
  const max = 1 << 20;

  beforeAll(async () => {
    dir = await tempDir('edgefl-round-artifacts-');
    allowed = join(dir.path, 'rounds');
    await mkdir(allowed);
    await writeFile(join(allowed, 'w.f32'), weights);
    await writeFile(join(dir.path, 'secret.txt'), weights); // same bytes, outside the allowed directory
    await symlink(join(dir.path, 'secret.txt'), join(allowed, 'escape.f32'));
    server = createServer((req, res) => {
      if (req.url === '/artifacts/w.f32') res.end(weights);
      else if (req.url === '/artifacts/long.f32') res.end(Buffer.concat([weights, weights]));
      else if (req.url === '/artifacts/hop.f32')
        res.writeHead(302, { location: `${origin}/private/w.f32` }).end();
      else if (req.url === '/private/w.f32') res.end(weights);
      else res.writeHead(404).end();
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    origin = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await dir?.remove();
  });

  const files = (): ArtifactPrefix[] => [parseArtifactPrefix(pathToFileURL(allowed).href)];
  const https = (): ArtifactPrefix[] => [parseArtifactPrefix(`${origin}/artifacts`)];

  it('refuses every by-reference result when no prefix is configured (the default)', async () => {
    expect(registryConfig.load({}).own.roundArtifactPrefixes).toEqual([]);
    const uri = pathToFileURL(join(allowed, 'w.f32')).href;
    expect(await refusal(fetchRoundWeights(ref(uri), { prefixes: [], maxBytes: max }))).toBe(
      'BY_REFERENCE_DISABLED',
    );
    expect(
      await refusal(fetchRoundWeights(ref(`${origin}/artifacts/w.f32`), { prefixes: [], maxBytes: max })),
    ).toBe('BY_REFERENCE_DISABLED');
  });

  it('reads an allowed file and an allowed URL, checking size and sha256', async () => {
    const uri = pathToFileURL(join(allowed, 'w.f32')).href;
    expect(await fetchRoundWeights(ref(uri), { prefixes: files(), maxBytes: max })).toEqual(weights);
    const plain = [parseArtifactPrefix(allowed)]; // an absolute directory works too
    expect(await fetchRoundWeights(ref(uri), { prefixes: plain, maxBytes: max })).toEqual(weights);
    expect(
      await fetchRoundWeights(ref(`${origin}/artifacts/w.f32`), { prefixes: https(), maxBytes: max }),
    ).toEqual(weights);
    const wrong = { ...ref(uri), sha256: '0'.repeat(64) };
    expect(await refusal(fetchRoundWeights(wrong, { prefixes: files(), maxBytes: max }))).toBe(
      'HASH_MISMATCH',
    );
    const tooBig = ref(uri);
    expect(await refusal(fetchRoundWeights(tooBig, { prefixes: files(), maxBytes: 100 }))).toBe('TOO_LARGE');
  });

  it('refuses files outside the allowed directories: .., symlinks, other directories', async () => {
    const outside = pathToFileURL(join(dir.path, 'secret.txt')).href;
    const dotdot = `${pathToFileURL(allowed).href}/../secret.txt`;
    const viaLink = pathToFileURL(join(allowed, 'escape.f32')).href;
    const system = 'file:///etc/passwd';
    for (const uri of [outside, dotdot, viaLink, system]) {
      expect(await refusal(fetchRoundWeights(ref(uri), { prefixes: files(), maxBytes: max })), uri).toBe(
        'FORBIDDEN_URI',
      );
    }
    // a sibling whose name merely starts with the allowed directory's name is outside it
    await mkdir(`${allowed}-evil`);
    await writeFile(join(`${allowed}-evil`, 'w.f32'), weights);
    const sibling = pathToFileURL(join(`${allowed}-evil`, 'w.f32')).href;
    expect(await refusal(fetchRoundWeights(ref(sibling), { prefixes: files(), maxBytes: max }))).toBe(
      'FORBIDDEN_URI',
    );
    // a file prefix does not open HTTP, nor an HTTP prefix files
    expect(
      await refusal(
        fetchRoundWeights(ref(`${origin}/artifacts/w.f32`), { prefixes: files(), maxBytes: max }),
      ),
    ).toBe('FORBIDDEN_URI');
    const uri = pathToFileURL(join(allowed, 'w.f32')).href;
    expect(await refusal(fetchRoundWeights(ref(uri), { prefixes: https(), maxBytes: max }))).toBe(
      'FORBIDDEN_URI',
    );
  });

  it('refuses URLs outside the prefix, redirects, credentials, other schemes and longer bodies', async () => {
    const opts = { prefixes: https(), maxBytes: max };
    for (const uri of [
      `${origin}/private/w.f32`,
      `${origin}/artifacts/../private/w.f32`,
      `${origin}/artifactsX/w.f32`,
      `http://localhost:${new URL(origin).port}/artifacts/w.f32`,
      `${origin}/artifacts/hop.f32`,
      `http://user:pw@127.0.0.1:${new URL(origin).port}/artifacts/w.f32`,
    ]) {
      expect(await refusal(fetchRoundWeights(ref(uri), opts)), uri).toBe('FORBIDDEN_URI');
    }
    expect(await refusal(fetchRoundWeights(ref('ftp://x/artifacts/w.f32'), opts))).toBe('BAD_URI');
    expect(await refusal(fetchRoundWeights(ref('not a url'), opts))).toBe('BAD_URI');
    expect(await refusal(fetchRoundWeights(ref(`${origin}/artifacts/long.f32`), opts))).toBe('HASH_MISMATCH');
  });

  it('refuses prefixes that could match more than they say', () => {
    for (const bad of ['relative/dir', 'ftp://host/x/', 'http://u:p@host/x/', 'http://host/x/?q=1', 'nope']) {
      expect(() => parseArtifactPrefix(bad), bad).toThrow();
    }
    expect(() => registryConfig.load({ REGISTRY_ROUND_ARTIFACT_PREFIXES: 'relative/dir' })).toThrow(
      /REGISTRY_ROUND_ARTIFACT_PREFIXES/,
    );
    expect(
      registryConfig.load({ REGISTRY_ROUND_ARTIFACT_PREFIXES: '/srv/rounds, https://store.example/r' }).own
        .roundArtifactPrefixes,
    ).toEqual([
      { kind: 'file', dir: '/srv/rounds' },
      { kind: 'http', url: new URL('https://store.example/r/') },
    ]);
  });
});
