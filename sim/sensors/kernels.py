"""Compiled per-pixel and per-point loops of the camera and the lidar (numba `njit`, cached in
__pycache__, no fastmath).

Each kernel fuses the run of numpy passes it replaces into one loop and keeps numpy's arithmetic
exactly: float32 throughout, every Python constant rounded to float32 first (numpy's rule for a
Python scalar against a float32 array: comparisons included), the same order of operations, the
texture index in float64 (the texture's origin is a float64 scalar). So frames are bit-identical
to the numpy version. `np.exp` stays in numpy (its SIMD float32 exp may differ from libm's in the
last bit): callers pass its result in.
"""
from __future__ import annotations

import numpy as np
from numba import njit

F32 = np.float32


@njit(cache=True)
def _texel(x0: float, y0: float, inv_res: float, w: int, h: int, x: np.float32, y: np.float32) -> int:
    """Flat index of the cell under world point (x, y) of a grid with origin (x0, y0), clamped."""
    c = np.int32((np.float64(x) - x0) * inv_res)
    r = np.int32((np.float64(y) - y0) * inv_res)
    c = min(max(c, 0), w - 1)
    r = min(max(r, 0), h - 1)
    return r * w + c


@njit(cache=True)
def camera_pixels(t, tri, ground, normals, rng_m, fog_t, ray_dir, origin, pose,
                  shade, light, albedo, is_wall, sem_table, inst_table,
                  tex, tex_grid, ground_sem, lamp_map, lamp_grid, lamp_rgb,
                  windows_lit, beam_ground, beam_mesh, head_k, fade_k, sky,
                  streaks, rain_k, gain, bias, noise, noise_off, image, semantic, instance, pixels):
    """Shade every pixel and write its RGB (uint8, H·W×3 row-major), semantic class and instance,
    and count the pixels of each instance id in `pixels[id + 1]`.

    Per pixel, in the order the numpy version applied them: the triangle's lit colour; on the
    ground, the texture's albedo under the ground light plus street-lamp pools (`lamp_grid[5]`
    > 0); on walls, the window pattern (lit ones when `windows_lit`); the ego's headlights
    (`head_k` > 0); fog towards the sky colour; rain streaks; contrast; noise (none: the +0.5 of
    rounding alone); clip; truncation to uint8.

    ray_dir: (3, N) float32 vehicle-frame directions; pose: (c, s, ex, ey) float32, the ego's
    heading cosine, sine and world position; tex_grid, lamp_grid: (x0, y0, 1/res, w, h, on)."""
    n = len(t)
    ox, oy, oz = origin[0], origin[1], origin[2]
    c, s, ex, ey = pose[0], pose[1], pose[2], pose[3]
    tx0, ty0, tinv, tw, th = tex_grid[0], tex_grid[1], tex_grid[2], int(tex_grid[3]), int(tex_grid[4])
    lx0, ly0, linv, lw, lh = lamp_grid[0], lamp_grid[1], lamp_grid[2], int(lamp_grid[3]), int(lamp_grid[4])
    lamps_on = lamp_grid[5] > 0
    night = head_k > 0  # at night only (dusk's dimmer headlights light nothing)
    inv255, zero, one = F32(1 / 255), F32(0.0), F32(1.0)
    g0, g1, g2 = F32(0.16), F32(0.2), F32(0.26)  # window glass
    w0, w1, w2 = F32(0.9), F32(0.75), F32(0.45)  # lit windows
    k32, k_floor, k3, k_along, w_lo, w_hi, a_lo = F32(3.2), F32(1 / 3.2), F32(3.0), F32(1 / 3.0), F32(1.0), F32(2.3), F32(0.7)
    k7919, k104729, inv15 = F32(7919), F32(104729), F32(1 / 15)
    lit = np.empty((3, n), dtype=np.float32)  # each pixel's light before fog and exposure
    a0 = a1 = a2 = lamp = zero
    for i in range(n):
        k = tri[i]
        ti = t[i]
        c0, c1, c2 = shade[0, k], shade[1, k], shade[2, k]
        semantic[i] = sem_table[k]
        instance[i] = inst_table[k]
        pixels[inst_table[k] + 1] += 1
        dxi, dyi, dzi = ray_dir[0, i], ray_dir[1, i], ray_dir[2, i]
        if ground[i]:
            xv = ox + ti * dxi
            yv = oy + ti * dyi
            xw = ex + c * xv - s * yv
            yw = ey + s * xv + c * yv
            q = _texel(tx0, ty0, tinv, tw, th, xw, yw)
            semantic[i] = ground_sem[tex[q, 3]]
            a0, a1, a2 = F32(tex[q, 0]) * inv255, F32(tex[q, 1]) * inv255, F32(tex[q, 2]) * inv255
            l0, l1, l2 = light[0, -1], light[1, -1], light[2, -1]
            if lamps_on:
                lamp = lamp_rgb[3] * lamp_map[_texel(lx0, ly0, linv, lw, lh, xw, yw)]
                l0, l1, l2 = l0 + lamp_rgb[0] * lamp, l1 + lamp_rgb[1] * lamp, l2 + lamp_rgb[2] * lamp
            c0, c1, c2 = a0 * l0, a1 * l1, a2 * l2
        elif night:
            a0, a1, a2 = albedo[0, k], albedo[1, k], albedo[2, k]
        if is_wall[k]:  # the facade's windows, anchored in the world: every 3.2 m up, 3 m along
            xv = ox + ti * dxi
            yv = oy + ti * dyi
            px = ex + c * xv - s * yv
            py = ey + s * xv + c * yv
            pz = oz + ti * dzi
            nx, ny = normals[i, 0], normals[i, 1]
            along = py * (c * nx - s * ny) - px * (s * nx + c * ny)
            fz = pz - np.floor(pz * k_floor) * k32
            fa = along - np.floor(along * k_along) * k3
            if fz > w_lo and fz < w_hi and fa > a_lo and fa < w_hi:
                c0, c1, c2 = g0 * light[0, k], g1 * light[1, k], g2 * light[2, k]
                if windows_lit:
                    cell = np.int64(np.floor(pz / k32) * k7919 + np.floor(along / k3) * k104729)
                    if (cell * 2654435761) % 1000 < 220:
                        c0, c1, c2 = c0 + w0, c1 + w1, c2 + w2
        if night:  # the ego's headlights: a cone, inverse-square
            beam = beam_ground[i] if ground[i] else beam_mesh[i]
            d = rng_m[i] * inv15
            fall = beam * head_k / (one + d * d)
            c0, c1, c2 = c0 + a0 * fall, c1 + a1 * fall, c2 + a2 * fall
        lit[0, i], lit[1, i], lit[2, i] = c0, c1, c2
    _expose(lit, rng_m, fog_t, fade_k, sky, streaks, rain_k, gain, bias, noise, noise_off, image)


@njit(cache=True)
def _expose(col, rng_m, fog_t, fade_k, sky, streaks, rain_k, gain, bias, noise, noise_off, image):
    """Fog towards the sky colour (fading out over the last 40 % of max depth), rain streaks,
    contrast, noise, clip and truncation to uint8. Channel by channel over contiguous rows, so
    the loops vectorise; interleaving into the H·W×3 image is a last, cheap pass."""
    n = col.shape[1]
    zero, one, half, f25, f255 = F32(0.0), F32(1.0), F32(0.5), F32(2.5), F32(255)
    rain = len(streaks) > 0
    noisy = len(noise) > 0
    f = np.empty(n, dtype=np.float32)
    streak = np.empty(n if rain else 0, dtype=np.float32)
    for i in range(n):
        f[i] = fog_t[i] * min(max(f25 - rng_m[i] * fade_k, zero), one)
    if rain:
        for i in range(n):
            streak[i] = rain_k * streaks[i]
    out = np.empty((3, n), dtype=np.uint8)
    for ch in range(3):
        cc, sk, o = col[ch], sky[ch], out[ch]
        nz = noise[noise_off + ch * n:noise_off + (ch + 1) * n] if noisy else noise
        for i in range(n):
            v = (cc[i] - sk[i]) * f[i] + sk[i]
            if rain:
                v = v + streak[i]
            v = v * gain + bias
            v = v + (nz[i] if noisy else half)
            o[i] = np.uint8(min(max(v, zero), f255))
    for i in range(n):
        image[i, 0], image[i, 1], image[i, 2] = out[0, i], out[1, i], out[2, i]


@njit(cache=True)
def lidar_candidates(t, min_range, max_range):
    """Indices of the rays whose range [m] is inside (min_range, max_range)."""
    out = np.empty(len(t), dtype=np.int64)
    k = 0
    for i in range(len(t)):
        if t[i] < max_range and t[i] > min_range:
            out[k] = i
            k += 1
    return out[:k]


@njit(cache=True)
def lidar_survivors(cand, u, p_drop, p_keep, fog_t):
    """Positions in `cand` of the returns that survive dropout and two-way fog extinction:
    u ≥ p + (1 − p)·(1 − e), with e = exp(−2β·r) (fog_t; empty: β = 0, e = 1)."""
    out = np.empty(len(cand), dtype=np.int64)
    fog = len(fog_t) > 0
    one = F32(1.0)
    k = 0
    for j in range(len(cand)):
        e = fog_t[j] if fog else one
        if u[cand[j]] >= p_drop + p_keep * (one - e):
            out[k] = j
            k += 1
    return out[:k]


@njit(cache=True)
def lidar_points(idx, t, tri, ground, normals, ray_dir, origin, pose, refl_table, sem_table, inst_table,
                 tex, tex_grid, ground_refl, ground_sem, fog_t, sigma, intensity_sigma, z, dirs_sensor, ring):
    """The returns of rays `idx`: points (lidar frame), intensity, instance, semantic, ring.

    Intensity is reflectivity × (0.35 + 0.65·|cos incidence|) (the ground's normal is +z), times
    the two-way fog transmittance (fog_t per return; empty: none); then range and intensity noise
    (z: 2n standard normals; empty: none) and the clip to 0–1."""
    n = len(idx)
    ox, oy = origin[0], origin[1]
    c, s, ex, ey = pose[0], pose[1], pose[2], pose[3]
    tx0, ty0, tinv, tw, th = tex_grid[0], tex_grid[1], tex_grid[2], int(tex_grid[3]), int(tex_grid[4])
    a, b, zero, one = F32(0.35), F32(0.65), F32(0.0), F32(1.0)
    fog, noisy = len(fog_t) > 0, len(z) > 0
    points = np.empty((n, 3), dtype=np.float32)
    intensity = np.empty(n, dtype=np.float32)
    instance = np.empty(n, dtype=np.int32)
    semantic = np.empty(n, dtype=np.uint8)
    rings = np.empty(n, dtype=np.uint8)
    for j in range(n):
        i = idx[j]
        k = tri[i]
        r = t[i]
        dxi, dyi, dzi = ray_dir[0, i], ray_dir[1, i], ray_dir[2, i]
        instance[j] = inst_table[k]
        if ground[i]:
            xv = ox + r * dxi
            yv = oy + r * dyi
            cls = tex[_texel(tx0, ty0, tinv, tw, th, ex + c * xv - s * yv, ey + s * xv + c * yv), 3]
            refl = ground_refl[cls]
            semantic[j] = ground_sem[cls]
            cos_in = -dzi
        else:
            refl = refl_table[k]
            semantic[j] = sem_table[k]
            cos_in = abs(normals[i, 0] * dxi + normals[i, 1] * dyi + normals[i, 2] * dzi)
        v = refl * (a + b * cos_in)
        if fog:
            v = v * fog_t[j]
        if noisy:
            r = r + sigma * z[j]
            v = v + intensity_sigma * z[n + j]
        intensity[j] = min(max(v, zero), one)
        for q in range(3):
            points[j, q] = dirs_sensor[i, q] * r
        rings[j] = ring[i]
    return points, intensity, instance, semantic, rings


@njit(cache=True)
def place_instances(mesh_v, mesh_n, scale, x, y, cos_yaw, sin_yaw, verts, normals):
    """n instances of one mesh: vertices scaled, turned and moved into `verts` (n·V×3), and the
    scaled mesh's triangle normals (S⁻¹·n, normalised, turned) into `normals` (n·M×3).

    As numpy did it: vertices turned in float32 (cos, sin rounded to float32) and moved in float64
    (x, y are float64); normals normalised in float32 and turned in float64."""
    nv, nm = len(mesh_v), len(mesh_n)
    for j in range(len(x)):
        c64, s64 = cos_yaw[j], sin_yaw[j]
        c, s = np.float32(c64), np.float32(s64)
        sx, sy, sz = scale[j, 0], scale[j, 1], scale[j, 2]
        for q in range(nv):
            v0, v1 = mesh_v[q, 0] * sx, mesh_v[q, 1] * sy
            verts[j * nv + q, 0] = np.float64(c * v0 - s * v1) + x[j]
            verts[j * nv + q, 1] = np.float64(s * v0 + c * v1) + y[j]
            verts[j * nv + q, 2] = mesh_v[q, 2] * sz
        for q in range(nm):
            n0, n1, n2 = mesh_n[q, 0] / sx, mesh_n[q, 1] / sy, mesh_n[q, 2] / sz
            length = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
            n0, n1, n2 = n0 / length, n1 / length, n2 / length
            normals[j * nm + q, 0] = c64 * n0 - s64 * n1
            normals[j * nm + q, 1] = s64 * n0 + c64 * n1
            normals[j * nm + q, 2] = n2


@njit(cache=True)
def resolve_hits(t_mesh, prim, ground_t, none):
    """Per ray: the ground when it is nearer than any mesh (nothing stands below it), the nearer
    ray parameter, and the hit triangle's row (`none`, the last row, for a miss)."""
    n = len(t_mesh)
    t = np.empty(n, dtype=np.float32)
    tri = np.empty(n, dtype=np.int64)
    ground = np.empty(n, dtype=np.bool_)
    for i in range(n):
        g = ground_t[i] < t_mesh[i]
        ground[i] = g
        t[i] = ground_t[i] if g else t_mesh[i]
        tri[i] = min(np.int64(prim[i]), none)
    return t, tri, ground
