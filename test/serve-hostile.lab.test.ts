import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, RunningServer } from '../src/serve/server';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { labDescribe } from './helpers/needs';

// The metrics port of test/serve-hostile.test.ts, read by promtool (Prometheus' own linter, from the Debian
// prometheus package that lab/up.sh prometheus installs).

/** GET `p` on a raw connection; the reply as text. */
function get(port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (c) => (got += c.toString('latin1')));
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
    sock.write(`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  });
}

labDescribe(['promtool'])('the metrics exposition', () => {
  let srv: RunningServer;
  beforeAll(async () => {
    const d = path.join(FIXTURES, 'lenet');
    const model = path.join(tmpDir('modelship-metrics-'), 'lenet.onnx');
    fs.writeFileSync(
      model,
      convertCaffe({
        prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
        prototxtFile: 'p',
        caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
        caffemodelFile: 'w',
      }).onnx,
    );
    srv = await startServer({ ...DEFAULT_SERVE, host: '127.0.0.1', port: 0, metricsPort: 0, modelPath: model, modelName: 'lenet', log: () => undefined });
    // a request of each kind the counters label: served, refused
    await get(srv.port, '/v2/health/ready');
    await get(srv.port, '/v2/models/nope');
  });
  afterAll(() => srv?.drain());

  test('promtool check metrics finds nothing to warn about', async () => {
    const reply = await get(srv.metricsPort!, '/metrics');
    expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    const text = reply.slice(reply.indexOf('\r\n\r\n') + 4);
    expect(text).toMatch(/^# TYPE modelship_requests_total counter$/m);
    const out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(out.trim()).toBe('');
  });
});
