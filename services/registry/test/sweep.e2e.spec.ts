import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { describeOnBuses, tempDir } from '@edgefl/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { admin, call, startRegistryAt } from './helpers.js';

describeOnBuses('registry garbage sweep at boot', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir('edgefl-registry-sweep-');
  });
  afterAll(() => dir.remove());

  it('removes at boot the files no committed row references once older than the grace period, and counts them', async () => {
    const env = { REGISTRY_SWEEP_GRACE_MS: '60000' };
    let registry = await startRegistryAt(dir.path, env);
    await call(registry.url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' });
    await call(registry.url, 'POST', '/v1/tenants/acme/models', {
      id: 'fraud',
      name: 'Fraud',
      spec: FRAUD_MLP,
    });
    for (const seed of [1, 2]) {
      const res = await fetch(`${registry.url}/v1/models/fraud/versions`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/octet-stream' },
        body: Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, seed))),
      });
      expect(res.status).toBe(201);
    }
    await registry.stop();
    const models = join(dir.path, 'registry-artifacts', 'acme', 'fraud');
    const kept = (await readdir(models)).sort();
    // what kill -9 leaves: an artifact and a delta whose rows never committed, a temp file of an interrupted write
    const old = new Date(Date.now() - 3_600_000);
    const orphans = ['v3-dead.onnx', 'd2-3-dead.delta', 'v3-dead.onnx.1234.tmp'];
    for (const name of orphans) {
      await writeFile(join(models, name), Buffer.alloc(1000, 7));
      await utimes(join(models, name), old, old);
    }
    await mkdir(join(dir.path, 'registry-artifacts', 'gone-tenant'), { recursive: true });
    await writeFile(join(dir.path, 'registry-artifacts', 'gone-tenant', 'x.onnx'), Buffer.alloc(24));
    await utimes(join(dir.path, 'registry-artifacts', 'gone-tenant', 'x.onnx'), old, old);
    // inside the grace period: possibly a version being written right now
    await writeFile(join(models, 'v4-fresh.onnx'), Buffer.alloc(10));
    for (const name of kept) await utimes(join(models, name), old, old);

    registry = await startRegistryAt(dir.path, env);
    try {
      expect((await readdir(models)).sort()).toEqual([...kept, 'v4-fresh.onnx'].sort());
      await expect(stat(join(dir.path, 'registry-artifacts', 'gone-tenant', 'x.onnx'))).rejects.toThrow();
      const metrics = await (await fetch(`${registry.url}/metrics`)).text();
      expect(metrics).toMatch(/^edgefl_registry_swept_files_total(\{[^}]*\})? 4$/m);
      expect(metrics).toMatch(/^edgefl_registry_swept_bytes_total(\{[^}]*\})? 3024$/m);
      // every committed version still downloads
      for (const v of [1, 2])
        expect(
          (await fetch(`${registry.url}/v1/models/fraud/versions/${v}/artifact`, { method: 'HEAD' })).status,
        ).toBe(200);
      expect((await fetch(`${registry.url}/v1/models/fraud/deltas/1/2`, { method: 'HEAD' })).status).toBe(
        200,
      );
    } finally {
      await registry.stop();
    }
  });
});
