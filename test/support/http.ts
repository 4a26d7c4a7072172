// The sidecar's HTTP endpoints as a probe or a scraper sees them.
export { freePort, freePorts } from '../../src/dev/local-process.js';

export async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}
