// What the dashboard knows about each kind of device.

export const DEVICE_TYPES = {
  acoustic_sensor: { label: "Acoustic sensor", plural: "Acoustic sensors", short: "Sensors" },
  plate_camera: { label: "Plate camera", plural: "Plate cameras", short: "Plate cams" },
  bodycam: { label: "Body-cam unit", plural: "Body-cam units", short: "Units" },
  camera: { label: "City camera", plural: "City cameras", short: "Cameras" },
};

export const TYPE_ORDER = Object.keys(DEVICE_TYPES);

export const STATUSES = ["online", "offline", "unknown"];

/** The status as the dashboard shows it (anything unexpected is "unknown"). */
export function normStatus(s) {
  return STATUSES.includes(s) ? s : "unknown";
}

/** A short label for a marker: the digits at the end of the id ("bwc-07" → "07"). */
export function shortLabel(id) {
  const m = /(\d+)$/.exec(id || "");
  return m ? m[1].slice(-3) : (id || "?").slice(0, 3);
}
