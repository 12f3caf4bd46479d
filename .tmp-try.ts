import * as fs from 'fs';
import { convertCaffe } from '/work/main/src/convert/converter';
import { checkParity, parityMarkdown } from '/work/main/src/convert/parity';
(async () => {
  for (const net of process.argv.slice(2)) {
    const dir = net;
    const t0 = Date.now();
    const conv = convertCaffe({ prototxt: fs.readFileSync(dir + '/deploy.prototxt'), prototxtFile: dir + '/deploy.prototxt', caffemodel: fs.readFileSync(dir + '/weights.caffemodel'), caffemodelFile: dir + '/weights.caffemodel' });
    const t1 = Date.now();
    const r = await checkParity(conv, dir.replace('models-v1','models'), { perLayer: true });
    console.log(net, 'convert ms', t1 - t0, 'nodes', conv.nodeCount);
    console.log(parityMarkdown(r));
  }
})().catch((e) => { console.error(e); process.exit(1); });
