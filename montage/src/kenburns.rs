//! The slow pan and zoom across each photo (the "Ken Burns effect"): the view starts on
//! the whole (cropped) photo and ends on a window around the photo's faces, or around
//! its centre when it has none, moving at a constant rate in between.
//!
//! Windows are in fractions of the cropped photo, which already has the frame's aspect
//! ratio, so one size describes both sides. Both end windows lie inside the photo, and
//! the constraint "inside" is linear in (centre, size), so every window in between does
//! too: the encoder never has to clamp, and what the tests check is what it shows.

/// A square-in-frame-units view: centre and side, as fractions of the cropped photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub cx: f64,
    pub cy: f64,
    /// The side as a share of the photo's (1: the whole photo).
    pub size: f64,
}

/// Where the view starts and ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pan {
    pub start: Window,
    pub end: Window,
}

/// The end view shows this share of the photo around the faces...
const FACE_END_SIZE: f64 = 0.78;
/// ...and this much around the centre of a photo without faces (a gentler move).
const PLAIN_END_SIZE: f64 = 0.88;
/// The end view leaves this much room around the face box (its side × this).
const FACE_MARGIN: f64 = 1.6;

/// A box in fractions of the cropped photo: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FractionBox {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl FractionBox {
    pub fn centre(&self) -> (f64, f64) {
        (self.left + self.width / 2.0, self.top + self.height / 2.0)
    }
}

impl Pan {
    /// From the whole photo to a window on `faces` (the box around every face), or on
    /// the centre.
    pub fn towards(faces: Option<FractionBox>) -> Pan {
        let start = Window {
            cx: 0.5,
            cy: 0.5,
            size: 1.0,
        };
        let end = match faces {
            Some(faces) => {
                // Never so close that the faces are cut: the window holds the box with room.
                let size = FACE_END_SIZE
                    .max(faces.width * FACE_MARGIN)
                    .max(faces.height * FACE_MARGIN)
                    .min(1.0);
                let (cx, cy) = faces.centre();
                inside(cx, cy, size)
            }
            None => inside(0.5, 0.5, PLAIN_END_SIZE),
        };
        Pan { start, end }
    }

    /// The view at `t` ∈ [0, 1] of the photo's time on screen.
    pub fn at(&self, t: f64) -> Window {
        let t = t.clamp(0.0, 1.0);
        let mix = |a: f64, b: f64| a + (b - a) * t;
        Window {
            cx: mix(self.start.cx, self.end.cx),
            cy: mix(self.start.cy, self.end.cy),
            size: mix(self.start.size, self.end.size),
        }
    }
}

/// The window of `size` centred as near (cx, cy) as the photo's edges allow.
fn inside(cx: f64, cy: f64, size: f64) -> Window {
    let half = size / 2.0;
    Window {
        cx: cx.clamp(half, 1.0 - half),
        cy: cy.clamp(half, 1.0 - half),
        size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(window: Window, b: FractionBox) -> bool {
        let half = window.size / 2.0;
        window.cx - half <= b.left + 1e-9
            && window.cy - half <= b.top + 1e-9
            && b.left + b.width <= window.cx + half + 1e-9
            && b.top + b.height <= window.cy + half + 1e-9
    }

    #[test]
    fn the_pan_ends_centred_on_the_faces_and_holds_them_whole() {
        let face = FractionBox {
            left: 0.5,
            top: 0.4,
            width: 0.2,
            height: 0.25,
        };
        let pan = Pan::towards(Some(face));
        assert_eq!(pan.start.size, 1.0);
        assert!(contains(pan.end, face), "{pan:?}");
        assert!((pan.end.cx - 0.6).abs() < 1e-9 && (pan.end.cy - 0.525).abs() < 1e-9);
        assert!(pan.end.size < 1.0);
    }

    #[test]
    fn a_face_at_the_edge_pulls_the_view_as_far_as_the_photo_goes() {
        let face = FractionBox {
            left: 0.9,
            top: 0.0,
            width: 0.1,
            height: 0.1,
        };
        let end = Pan::towards(Some(face)).end;
        assert!((end.cx + end.size / 2.0 - 1.0).abs() < 1e-9, "{end:?}");
        assert!((end.cy - end.size / 2.0).abs() < 1e-9, "{end:?}");
        assert!(contains(end, face));
    }

    #[test]
    fn a_large_face_gets_a_wider_end_view_and_no_face_a_gentle_centre_zoom() {
        let big = FractionBox {
            left: 0.1,
            top: 0.1,
            width: 0.7,
            height: 0.7,
        };
        let end = Pan::towards(Some(big)).end;
        assert_eq!(end.size, 1.0);
        let plain = Pan::towards(None).end;
        assert_eq!((plain.cx, plain.cy, plain.size), (0.5, 0.5, PLAIN_END_SIZE));
    }

    #[test]
    fn every_window_on_the_way_stays_inside_the_photo() {
        let pan = Pan::towards(Some(FractionBox {
            left: 0.0,
            top: 0.85,
            width: 0.1,
            height: 0.15,
        }));
        for i in 0..=20 {
            let w = pan.at(f64::from(i) / 20.0);
            let half = w.size / 2.0;
            assert!(w.cx - half >= -1e-9 && w.cx + half <= 1.0 + 1e-9, "{w:?}");
            assert!(w.cy - half >= -1e-9 && w.cy + half <= 1.0 + 1e-9, "{w:?}");
        }
        assert_eq!(pan.at(0.0), pan.start);
        assert_eq!(pan.at(1.0), pan.end);
    }
}
