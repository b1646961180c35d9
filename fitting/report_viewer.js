// The run report's 3D viewer (fitting/report_viewer.py): the GLB embedded in the page as base64,
// shown from the fit's camera direction, orbitable, with play/pause and a time slider for a sequence.
// window.bodyfitViewer tells a browser check when it is ready and where the body is on the canvas.
import * as THREE from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";

const root = document.getElementById("viewer");
const canvas = root.querySelector("canvas");
const button = root.querySelector("button");
const slider = root.querySelector("input");
const status = root.querySelector(".status");
const text = document.getElementById("bodyfit-glb").textContent.trim();
const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

const renderer = new THREE.WebGLRenderer({ canvas, antialias: true });
renderer.setPixelRatio(window.devicePixelRatio);
renderer.setSize(canvas.clientWidth, canvas.clientHeight, false);
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x20262e);
scene.add(new THREE.HemisphereLight(0xffffff, 0x30363d, 2.5));
const sun = new THREE.DirectionalLight(0xffffff, 2.0);
sun.position.set(2, 4, 3);
scene.add(sun);
scene.add(new THREE.GridHelper(10, 20, 0x3a434e, 0x2a3139));
const camera = new THREE.PerspectiveCamera(35, canvas.clientWidth / canvas.clientHeight, 0.05, 200);
const controls = new OrbitControls(camera, canvas);
const clock = new THREE.Clock();

function bodyBox(mesh) {
  return new THREE.Box3().setFromObject(mesh, true);
}

// The body's box over the clip (sampled), to frame the whole motion.
function motionBox(gltf, mesh, mixer, duration) {
  const box = new THREE.Box3();
  const steps = duration > 0 ? 24 : 0;
  for (let i = 0; i <= steps; i++) {
    mixer.setTime(steps ? (duration * i) / steps : 0);
    gltf.scene.updateMatrixWorld(true);
    box.union(bodyBox(mesh));
  }
  mixer.setTime(0);
  gltf.scene.updateMatrixWorld(true);
  return box;
}

function place(gltf, box) {
  const center = box.getCenter(new THREE.Vector3());
  const radius = box.getBoundingSphere(new THREE.Sphere()).radius;
  const direction = new THREE.Vector3(0, 0, -1);
  const seen = gltf.cameras[0];
  if (seen) {
    direction.subVectors(center, seen.getWorldPosition(new THREE.Vector3()));
    direction.y = Math.min(Math.max(direction.y, -0.5 * direction.length()), 0.5 * direction.length());
    direction.normalize();
  }
  const distance = (1.15 * radius) / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2));
  camera.position.copy(center).addScaledVector(direction, -distance);
  camera.near = distance / 100;
  camera.far = distance * 100;
  camera.updateProjectionMatrix();
  controls.target.copy(center);
  controls.update();
}

// The body's current box on the canvas, in CSS pixels from the canvas's top left: [x0, y0, x1, y1].
function screenBox(mesh) {
  const box = bodyBox(mesh);
  const [w, h] = [canvas.clientWidth, canvas.clientHeight];
  const xs = [];
  const ys = [];
  for (const x of [box.min.x, box.max.x])
    for (const y of [box.min.y, box.max.y])
      for (const z of [box.min.z, box.max.z]) {
        const p = new THREE.Vector3(x, y, z).project(camera);
        xs.push(((p.x + 1) / 2) * w);
        ys.push(((1 - p.y) / 2) * h);
      }
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function show(gltf) {
  scene.add(gltf.scene);
  let mesh = null;
  gltf.scene.traverse((o) => {
    if (o.isSkinnedMesh || (o.isMesh && !mesh)) mesh = o;
  });
  const mixer = new THREE.AnimationMixer(gltf.scene);
  const clip = gltf.animations[0];
  const action = clip ? mixer.clipAction(clip).play() : null;
  const duration = clip ? clip.duration : 0;
  place(gltf, motionBox(gltf, mesh, mixer, duration));
  const sequence = action && duration > 0;
  button.hidden = slider.hidden = !sequence;
  button.addEventListener("click", () => {
    action.paused = !action.paused;
    button.textContent = action.paused ? "Play" : "Pause";
  });
  slider.addEventListener("input", () => {
    action.paused = true;
    button.textContent = "Play";
    action.time = (slider.value / slider.max) * duration;
    mixer.update(0);
  });
  clock.start();
  renderer.setAnimationLoop(() => {
    mixer.update(clock.getDelta());
    controls.update();
    renderer.render(scene, camera);
    if (sequence) {
      if (!action.paused) slider.value = (action.time / duration) * slider.max;
      status.textContent = `${action.time.toFixed(2)} / ${duration.toFixed(2)} s`;
    }
  });
  window.bodyfitViewer = {
    ready: true,
    sequence,
    playing: () => Boolean(sequence && !action.paused),
    box: () => screenBox(mesh),
  };
}

window.addEventListener("resize", () => {
  renderer.setSize(canvas.clientWidth, canvas.clientHeight, false);
  camera.aspect = canvas.clientWidth / canvas.clientHeight;
  camera.updateProjectionMatrix();
});

new GLTFLoader().parse(bytes.buffer, "", show, (error) => {
  status.textContent = `The 3D view could not load the body: ${error.message || error}`;
  console.error(error);
});
