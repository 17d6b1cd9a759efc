// devices/: camera and stream sources (devices/sources) and device profiles (devices/profiles.ts).

export * from './sources/index.js';
export * from './profiles.js';
