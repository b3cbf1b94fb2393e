; Owlery's additions to electron-builder's NSIS installer (included through nsis.include).
;
; "Open with Owlery" for photos: registers a ProgID and lists it under each extension's
; OpenWithProgids, plus the application's SupportedTypes. It never writes an extension's default
; value, so the user's default photo app stays as it is; uninstalling removes only what is added here.
; SHELL_CONTEXT is HKCU for a per-user install and HKLM for a per-machine one.

!macro OwleryOpenWith EXT
  WriteRegNone SHELL_CONTEXT "Software\Classes\.${EXT}\OpenWithProgids" "Owlery.Photo"
  WriteRegStr SHELL_CONTEXT "Software\Classes\Applications\${APP_EXECUTABLE_FILENAME}\SupportedTypes" ".${EXT}" ""
!macroend

!macro OwleryNoLongerOpenWith EXT
  DeleteRegValue SHELL_CONTEXT "Software\Classes\.${EXT}\OpenWithProgids" "Owlery.Photo"
!macroend

!macro customInstall
  WriteRegStr SHELL_CONTEXT "Software\Classes\Owlery.Photo" "" "Photo"
  WriteRegStr SHELL_CONTEXT "Software\Classes\Owlery.Photo\DefaultIcon" "" "$appExe,0"
  WriteRegStr SHELL_CONTEXT "Software\Classes\Owlery.Photo\shell\open" "FriendlyAppName" "${PRODUCT_NAME}"
  WriteRegStr SHELL_CONTEXT "Software\Classes\Owlery.Photo\shell\open\command" "" '"$appExe" "%1"'
  WriteRegStr SHELL_CONTEXT "Software\Classes\Applications\${APP_EXECUTABLE_FILENAME}" "FriendlyAppName" "${PRODUCT_NAME}"
  WriteRegStr SHELL_CONTEXT "Software\Classes\Applications\${APP_EXECUTABLE_FILENAME}\shell\open\command" "" '"$appExe" "%1"'
  !insertmacro OwleryOpenWith "jpg"
  !insertmacro OwleryOpenWith "jpeg"
  !insertmacro OwleryOpenWith "png"
  !insertmacro OwleryOpenWith "webp"
  !insertmacro OwleryOpenWith "gif"
  !insertmacro OwleryOpenWith "tif"
  !insertmacro OwleryOpenWith "tiff"
  !insertmacro OwleryOpenWith "avif"
  !insertmacro OwleryOpenWith "heic"
  !insertmacro OwleryOpenWith "heif"
  ; SHCNE_ASSOCCHANGED: let Explorer pick up the new "Open with" entries.
  System::Call 'shell32::SHChangeNotify(i, i, i, i) v (0x08000000, 0, 0, 0)'
!macroend

!macro customUnInstall
  !insertmacro OwleryNoLongerOpenWith "jpg"
  !insertmacro OwleryNoLongerOpenWith "jpeg"
  !insertmacro OwleryNoLongerOpenWith "png"
  !insertmacro OwleryNoLongerOpenWith "webp"
  !insertmacro OwleryNoLongerOpenWith "gif"
  !insertmacro OwleryNoLongerOpenWith "tif"
  !insertmacro OwleryNoLongerOpenWith "tiff"
  !insertmacro OwleryNoLongerOpenWith "avif"
  !insertmacro OwleryNoLongerOpenWith "heic"
  !insertmacro OwleryNoLongerOpenWith "heif"
  DeleteRegKey SHELL_CONTEXT "Software\Classes\Owlery.Photo"
  DeleteRegKey SHELL_CONTEXT "Software\Classes\Applications\${APP_EXECUTABLE_FILENAME}"
  System::Call 'shell32::SHChangeNotify(i, i, i, i) v (0x08000000, 0, 0, 0)'
!macroend
