import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCsvDataset, standardize } from './dataset.js';
import { heartbeat, type SystemProbe } from './heartbeat.js';

const dir = mkdtempSync(join(tmpdir(), 'edgefl-dataset-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('CSV data sets', () => {
  it('reads a header row and a named label column; text labels become class indices', () => {
    const d = loadCsvDataset(file('h.csv', 'a,b,kind\n1,2,cat\n3,4,dog\n5,6,cat\n'), 'kind');
    expect(d).toMatchObject({
      rows: 3,
      features: 2,
      featureNames: ['a', 'b'],
      labels: [0, 1, 0],
      classes: ['cat', 'dog'],
    });
    expect([...d.x]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("reads scikit-learn's files (metadata first line, label last, CRLF) and gzip, with the label as an index", () => {
    const text = '3,2,no,yes\r\n0.5,1,0\r\n1.5,2,1\r\n2.5,3,1\r\n';
    const plain = loadCsvDataset(file('s.csv', text), '-1');
    expect(plain).toMatchObject({ rows: 3, features: 2, labels: [0, 1, 1], classes: null });
    expect(loadCsvDataset(file('s.csv.gz', gzipSync(text)), '2').labels).toEqual([0, 1, 1]);
  });

  it('names the problem: missing column, non-numeric feature, ragged row, no header for a name, unreadable file', () => {
    expect(() => loadCsvDataset(file('m.csv', 'a,b\n1,2\n'), 'y')).toThrow(/no column named y/);
    expect(() => loadCsvDataset(file('n.csv', 'a,b,y\n1,x,0\n'), 'y')).toThrow(
      /row 1, column b: not a number/,
    );
    expect(() => loadCsvDataset(file('r.csv', 'a,b,y\n1,2,0\n1,0\n'), 'y')).toThrow(
      /row 2: 2 columns, expected 3/,
    );
    expect(() => loadCsvDataset(file('i.csv', '1,2,0\n3,4,1\n'), 'y')).toThrow(/no header row/);
    expect(() => loadCsvDataset(join(dir, 'absent.csv'), 'y')).toThrow(/cannot read/);
  });

  it('standardises features to mean 0, std 1 (a constant feature becomes 0)', () => {
    const x = Float32Array.from([1, 5, 3, 5, 5, 5]);
    standardize(x, 3, 2);
    expect([...x].map((v) => Number(v.toFixed(4)))).toEqual([-1.2247, 0, 0, 0, 1.2247, 0]);
  });
});

describe('heartbeats', () => {
  it('carry the model, RAM, CPU, accelerator, battery, network type and firmware', () => {
    const probe: SystemProbe = {
      ram: () => ({ totalBytes: 4 << 30, freeBytes: 1 << 30 }),
      cpuPercent: () => 12.5,
      battery: () => ({ percent: 64, charging: false }),
      networkType: () => 'WIFI',
      accelerator: () => 'NPU',
    };
    expect(
      heartbeat(
        { tenant: 'acme', deviceId: 'd', firmwareVersion: '2.1.0' },
        { modelId: 'fraud', version: 3 },
        probe,
        1_000,
      ),
    ).toMatchObject({
      tenant: 'acme',
      deviceId: 'd',
      modelId: 'fraud',
      modelVersion: 3,
      ramTotalBytes: 4 << 30,
      ramFreeBytes: 1 << 30,
      cpuPercent: 12.5,
      accelerator: 'NPU',
      batteryPercent: 64,
      networkType: 'WIFI',
      firmwareVersion: '2.1.0',
      timestamp: 1_000,
    });
  });
});
